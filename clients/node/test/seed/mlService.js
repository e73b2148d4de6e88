// src/services/mlService.js

const axios = require('axios');

const ML_SERVICE_URL = process.env.ML_SERVICE_URL || 'http://localhost:8001';

class MLService {
  // Stage 2: Create style profile
  async createStyleProfile(userId, vltRecords) {
    const response = await axios.post(`${ML_SERVICE_URL}/api/ml/style-profile/create`, {
      user_id: userId,
      vlt_records: vltRecords,
      n_clusters: 5
    });
    return response.data.profile;
  }
  
  // Stage 5: Optimize prompt with RLHF
  async optimizePrompt(userId, basePrompt, vltSpec, styleProfile, feedbackHistory) {
    const response = await axios.post(`${ML_SERVICE_URL}/api/ml/prompt/optimize`, {
      user_id: userId,
      base_prompt: basePrompt,
      vlt_spec: vltSpec,
      style_profile: styleProfile,
      feedback_history: feedbackHistory
    });
    return response.data;
  }
  
  // Stage 8: Validate generated images
  async validateImages(generationId, images, targetVlt) {
    const response = await axios.post(`${ML_SERVICE_URL}/api/ml/validate`, {
      generation_id: generationId,
      images: images,
      target_vlt: targetVlt
    });
    return response.data;
  }
  
  // Stage 9: Select diverse images
  async selectDiverse(images, targetCount) {
    const response = await axios.post(`${ML_SERVICE_URL}/api/ml/select/diverse`, {
      images: images,
      target_count: targetCount,
      diversity_weight: 0.7,
      quality_weight: 0.3
    });
    return response.data;
  }
  
  // Stage 10: Submit feedback
  async submitFeedback(userId, generationId, assetId, feedbackType, promptUsed, vltSpec) {
    const response = await axios.post(`${ML_SERVICE_URL}/api/ml/feedback/submit`, {
      user_id: userId,
      generation_id: generationId,
      asset_id: assetId,
      feedback_type: feedbackType,
      prompt_used: promptUsed,
      vlt_spec: vltSpec
    });
    return response.data;
  }
}

module.exports = new MLService();
