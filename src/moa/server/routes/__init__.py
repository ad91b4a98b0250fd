"""HTTP routes: moa's own API (``api``), the OpenAI-compatible one (``openai``), and the
service routes (health, metrics, playground)."""
