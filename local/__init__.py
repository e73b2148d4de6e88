"""Run the service on any machine: template.yaml's resources on moto, its routes over HTTP.

``local.cfn_yaml`` reads the template, ``local.cloud`` creates its tables, buckets and queues
and resolves function environments, ``local.events`` builds the events Lambda would receive,
``local.runtime`` loads and calls handlers, ``local.server`` serves it all
(``python -m local.server``).
"""
