// __NAME__: an Edgeward function.

import { handler, Response } from './edgeward.js';

export const incomingHandler = handler((req) =>
  Response.text(200, `Hello from __NAME__! You asked for ${req.path}\n`),
);
