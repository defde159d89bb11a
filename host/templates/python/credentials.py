"""__NAME__: an Edgeward function that calls an API with a credential the host attaches."""

import edgeward
from edgeward import Outgoing, Response

# Allowed in edgeward.toml (`[outbound] hosts`), with the credential API_KEY declared for it.
API = "https://api.example.com/v1/me"


def handle(req):
    # The host puts `authorization: Bearer <API_KEY>` on the request as it leaves; the value
    # never enters this function.
    try:
        answer = Outgoing.get(API).with_credential("API_KEY").send()
    except OSError as err:
        return Response.text(502, f"upstream: {err}\n")
    return Response.text(answer.status, answer.body)


IncomingHandler = edgeward.handler(handle)
