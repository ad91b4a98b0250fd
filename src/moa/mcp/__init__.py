"""moa as an MCP server: tools ``blend``, ``compare`` and ``judge`` for agents.

``moa mcp`` serves them over stdio on the user's own machine (like the CLI: no key, no
credits); ``moa serve`` also serves them as streamable HTTP at ``/mcp``, behind the same key,
rate limits and credits as the HTTP routes. Built on the official ``mcp`` SDK's low-level
server, so each tool's input schema is the HTTP body's model, said once in ``moa.types``.
"""
