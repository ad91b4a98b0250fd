"""Peers: other LLM gateways run side by side with moa against the same scripted upstream.

Each peer lives in its own virtualenv under ``bench/.peers/`` (git-ignored, created on
demand by ``python -m bench --peers``), so none of them is ever a dependency of moa.
"""
