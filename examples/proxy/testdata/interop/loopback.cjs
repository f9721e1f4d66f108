// loopback.cjs: a Node preload for running the official FalkorDB MCP server
// (npm @falkordb/mcpserver) in tests.
//
//	node --require ./loopback.cjs node_modules/@falkordb/mcpserver/dist/index.js
//
// The server calls httpServer.listen(port) with no host, which binds every
// interface. This preload forces 127.0.0.1 on any listen(port[, cb]) call and,
// once the socket is listening, writes one line to stderr:
//
//	INTEROP_LISTENING 127.0.0.1:PORT
//
// so a test can start the server with MCP_PORT=0 (a free port chosen by the
// kernel) and learn the address without races. The server itself prints
// nothing on start (its logs go to MCP notifications and, with
// NODE_ENV=development, to a file).
'use strict';

const net = require('net');

const origListen = net.Server.prototype.listen;

net.Server.prototype.listen = function listen(...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    // listen(port), listen(port, cb), listen(port, backlog, cb) -> insert the host.
    if (args.length === 1 || typeof args[1] !== 'string') {
      args.splice(1, 0, '127.0.0.1');
    }
  } else if (args[0] && typeof args[0] === 'object' && !Array.isArray(args[0])) {
    const opts = args[0];
    if (opts.port !== undefined && opts.path === undefined && opts.host === undefined) {
      args[0] = Object.assign({}, opts, { host: '127.0.0.1' });
    }
  }
  this.once('listening', () => {
    const a = this.address();
    if (a && typeof a === 'object') {
      process.stderr.write(`INTEROP_LISTENING ${a.address}:${a.port}\n`);
    }
  });
  return origListen.apply(this, args);
};
