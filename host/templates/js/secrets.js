// __NAME__: an Edgeward function that reads a secret.

import { handler, secrets, Response } from './edgeward.js';

export const incomingHandler = handler((req) => {
  // Package, then project, then platform scope; only names edgeward.toml allows.
  const greeting = secrets.get('GREETING');
  if (!greeting) return Response.text(200, 'no secret GREETING yet\n');
  return Response.text(
    200,
    `${greeting.reveal()} (GREETING from ${greeting.scope} scope; you asked for ${req.path})\n`,
  );
});
