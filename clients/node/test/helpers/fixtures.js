'use strict';

const crypto = require('node:crypto');

// Three styles no clustering can mistake for one another, four records each, in the seed's shape
// with the mess API.md promises (case, hyphens, a missing group, a list value).
const STYLES = {
  evening: {
    garment_type: 'dress',
    attributes: { silhouette: 'A-line', neckline: 'V-neck', sleeveLength: 'sleeveless', length: 'midi' },
    colors: { primary: 'black', finish: 'matte' },
    style: { overall: 'elegant', mood: 'sophisticated' },
  },
  street: {
    garment_type: 'jeans',
    attributes: { silhouette: 'straight', fit: 'relaxed', length: 'ankle' },
    colors: { primary: 'Navy Blue', finish: 'washed' },
    style: { overall: 'casual', mood: 'laid-back' },
  },
  sport: {
    garment_type: 'leggings',
    attributes: { silhouette: 'bodycon', fit: 'compression', length: 'full' },
    colors: { primary: 'neon green', finish: 'shiny' },
    style: { overall: 'sporty', mood: 'energetic' },
  },
};

function variant(style, i) {
  const base = structuredClone(STYLES[style]);
  if (i === 1) base.attributes.silhouette = base.attributes.silhouette.toUpperCase();
  if (i === 2) base.details = ['pleats', 'belt'].slice(0, style === 'evening' ? 2 : 1);
  if (i === 3) delete base.colors.finish;
  return base;
}

/** 12 portfolio records, ids "<style>-<n>". */
function portfolio() {
  return Object.keys(STYLES).flatMap((style) =>
    [0, 1, 2, 3].map((i) => ({ id: `${style}-${i}`, ...variant(style, i) })),
  );
}

/** A VLT spec of the given style (no id, as the Node side sends a target). */
function spec(style = 'evening') {
  return structuredClone(STYLES[style]);
}

/** Generated images: `n` on-spec evening dresses and one off-style sporty one, with qualities. */
function generatedImages(n = 4) {
  const images = Array.from({ length: n }, (_, i) => ({
    id: `img-${i}`,
    url: `https://example.invalid/img-${i}.png`,
    vlt: variant('evening', i % 4),
    quality_score: 0.9 - i * 0.05,
  }));
  images.push({ id: 'img-off', url: 'https://example.invalid/img-off.png', vlt: spec('sport'), quality_score: 0.8 });
  return images;
}

/** A fresh user id per test, so tests never see each other's data. */
function userId(label) {
  return `node-${label}-${crypto.randomUUID().slice(0, 8)}`;
}

module.exports = { portfolio, spec, generatedImages, userId, STYLES };
