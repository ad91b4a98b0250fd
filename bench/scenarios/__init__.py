"""One module per measured question; each exposes ``async def run(lab, plan) -> dict``
(the local-model one needs no servers and takes only the plan)."""
