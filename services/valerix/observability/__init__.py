"""Build-time observability assets (the Grafana dashboard). Never imported by the services:
it needs the dev-only grafana-foundation-sdk."""
