// PostGraphile v5 over one village schema, for bench/race/race.py (which starts it).
//
//   node server.mjs <libpq connection string> <village schema> <functions schema> <port>
//
// Every request runs in a transaction under the village's own NOLOGIN role (PostGraphile's
// pgSettings become `set_config('role', ..., true)`, the same effect as the gateway's
// `SET LOCAL ROLE`), so both servers read with the same rights. The functions schema holds
// the one SQL function the race adds for the "aged 80 and over" read (amber's conditions
// are equality only). Prints "listening <port>" once it serves.
import { createServer } from "node:http";
import { postgraphile } from "postgraphile";
import { makePgService } from "postgraphile/adaptors/pg";
import { grafserv } from "postgraphile/grafserv/node";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";

const [connectionString, schema, functions, port] = process.argv.slice(2);

const preset = {
  extends: [PostGraphileAmberPreset],
  // Conditions on unindexed columns too: the page filters on `status`, as the gateway's does.
  disablePlugins: ["PgIndexBehaviorsPlugin"],
  pgServices: [makePgService({ connectionString, schemas: [schema, functions] })],
  grafast: {
    context: () => ({ pgSettings: { role: schema } }),
    explain: false,
  },
  grafserv: { graphiql: false, watch: false },
};

const pgl = postgraphile(preset);
const server = createServer();
server.on("error", (error) => {
  console.error(error);
  process.exit(1);
});
await pgl.createServ(grafserv).addTo(server);
server.listen(Number(port), "127.0.0.1", () => console.log(`listening ${port}`));

const stop = async () => {
  server.close();
  await pgl.release();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
