// The child process of the shutdown acceptance test: a service-kit server configured from env and
// flags, with the Echo service (whose `delayMs` makes a slow call) and the signal handlers.
import { loadServiceConfig } from './config.js';
import { echoHandlers, EchoService } from './echo-service.test-helper.js';
import { createServer } from './server.js';
import { installShutdownHandlers } from './shutdown.js';

const config = loadServiceConfig({ env: process.env, argv: process.argv.slice(2) });
const server = createServer(config, { name: 'slow-echo' });
server.addService(EchoService, echoHandlers());
await server.start();
installShutdownHandlers(server);
