"""``python -m controlroom_gateway`` serves the API; ``... projector`` runs the read-model
projector process; ``... token`` mints a development token."""

from __future__ import annotations

import argparse
import os
import sys

from controlroom_gateway.auth import Role, mint_token
from controlroom_gateway.settings import GatewaySettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controlroom_gateway")
    commands = parser.add_subparsers(dest="command")
    token = commands.add_parser(
        "token", help="print a bearer token signed with CONTROLROOM_JWT_SECRET"
    )
    token.add_argument("--tenant", required=True)
    token.add_argument("--role", choices=[r.name for r in Role], default="operator")
    token.add_argument("--sub", default="developer")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="seconds until it expires")
    projector = commands.add_parser(
        "projector", help="project run events into the read model (CONTROLROOM_READ_MODEL=separate)"
    )
    projector.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("CONTROLROOM_GATEWAY_PROJECTOR_PORT", "8795")),
        help="health, readiness and metrics (default $CONTROLROOM_GATEWAY_PROJECTOR_PORT or 8795)",
    )
    args = parser.parse_args(argv)

    settings = GatewaySettings()  # the secret comes from the environment
    if args.command == "token":
        print(
            mint_token(
                settings.jwt_secret.get_secret_value(),
                tenant_id=args.tenant,
                subject=args.sub,
                role=args.role,
                ttl_seconds=args.ttl,
                # What the gateway will check, when it is configured to.
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            )
        )
        return 0
    from controlroom_runtime.serve import serve

    if args.command == "projector":
        from controlroom_gateway.projector import create_projector_app

        projector_settings = settings.model_copy(update={"port": args.port})
        serve("gateway-projector", create_projector_app(projector_settings), projector_settings)
        return 0
    from controlroom_gateway.app import create_app

    serve("gateway", create_app(settings), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
