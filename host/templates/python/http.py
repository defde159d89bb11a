"""__NAME__: an Edgeward function."""

import edgeward
from edgeward import Response


def handle(req):
    return Response.text(200, f"Hello from __NAME__! You asked for {req.path}\n")


IncomingHandler = edgeward.handler(handle)
