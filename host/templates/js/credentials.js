// __NAME__: an Edgeward function that calls an API with a credential the host attaches.

import { handler, Outgoing, Response } from './edgeward.js';

// Allowed in edgeward.toml (`[outbound] hosts`), with the credential API_KEY declared for it.
const API = 'https://api.example.com/v1/me';

export const incomingHandler = handler(() => {
  // The host puts `authorization: Bearer <API_KEY>` on the request as it leaves; the value
  // never enters this function.
  try {
    const answer = Outgoing.get(API).withCredential('API_KEY').send();
    return new Response(answer.status, answer.body);
  } catch (e) {
    return Response.text(502, `upstream: ${e.message}\n`);
  }
});
