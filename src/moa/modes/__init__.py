"""Single-model chat, side-by-side compare and judge: the modes beside the blend.

Each mode is an async generator of events ending in its answer object, so the server and
the CLI render them exactly as they render a blend.
"""
