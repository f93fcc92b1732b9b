"""The MCP server: the gateway's use cases as Model Context Protocol tools and resources, for
coding agents (Continue and others), served over Streamable HTTP at ``/mcp`` with the same
bearer JWT and tenant rules as the REST API (``endpoint``); ``controlroom mcp`` bridges it to
stdio."""
