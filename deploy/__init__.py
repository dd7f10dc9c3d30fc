"""The deployment recipe: Nginx site and systemd unit templates, their renderer, the env-file
template and its drift check, and `make smoke-prod` (see docs/deploy.md)."""
