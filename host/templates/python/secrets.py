"""__NAME__: an Edgeward function that reads a secret."""

import edgeward
from edgeward import Response


def handle(req):
    # Package, then project, then platform scope; only names edgeward.toml allows.
    greeting = edgeward.secrets.get("GREETING")
    if greeting is None:
        return Response.text(200, "no secret GREETING yet\n")
    return Response.text(
        200,
        f"{greeting.reveal()} (GREETING from {greeting.scope} scope; you asked for {req.path})\n",
    )


IncomingHandler = edgeward.handler(handle)
