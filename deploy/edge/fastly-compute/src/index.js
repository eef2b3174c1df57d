/// <reference types="@fastly/js-compute" />
// The Fastly Compute entry point: the configuration comes from the config
// store "anteroom" (key "config", the edge configuration as JSON), read
// once per instance; backends "anteroom" and "origin" are the service's.

import { ConfigStore } from 'fastly:config-store';
import { createHandler } from './handler.js';

let handler;

addEventListener('fetch', (event) => event.respondWith(serve(event.request)));

async function serve(request) {
  if (!handler) {
    const text = new ConfigStore('anteroom').get('config');
    if (text === null) {
      console.error('anteroom: config store "anteroom" has no key "config"');
      return new Response('Service unavailable\n', { status: 503, headers: { 'retry-after': '30' } });
    }
    handler = createHandler({ config: JSON.parse(text), fetch: (req, backend) => fetch(req, { backend }) });
  }
  return handler(request);
}
