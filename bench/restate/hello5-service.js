// The hello5 service of Restate's side of `scripts/bench hello5-js-vs-restate`
// (run.sh): the workflow `hello5` calls five steps one after another, each
// returning "Hello, <city>!", as Baton's Hello5 calls its five SayHello
// activities. $RESTATE_STEP chooses the step:
//   call  a call to the `greeter` service's handler: an invocation of its own
//         that the server schedules, journals and answers (what a Durable
//         Task activity is: a work item the server hands to a worker);
//   run   ctx.run, a side effect journaled in the workflow's own invocation.
// Serves HTTP/2 (h2c) on 127.0.0.1:$PORT only.
"use strict";
const http2 = require("node:http2");
const restate = require("@restatedev/restate-sdk");

const STEP = process.env.RESTATE_STEP || "call";
const CITIES = ["Tokyo", "Seattle", "London", "Paris", "Lima"];
const sayHello = async (_ctx, name) => `Hello, ${name}!`;

const greeter = restate.service({ name: "greeter", handlers: { sayHello } });
const hello5 = restate.workflow({
  name: "hello5",
  handlers: {
    run: async (ctx) => {
      const out = [];
      for (const city of CITIES) {
        out.push(STEP === "run"
          ? await ctx.run("sayHello", () => `Hello, ${city}!`)
          : await ctx.serviceClient(greeter).sayHello(city));
      }
      return out;
    },
  },
});

const handler = restate.endpoint().bind(greeter).bind(hello5).http2Handler();
const server = http2.createServer(handler);
server.listen(Number(process.env.PORT), "127.0.0.1", () => console.log("service listening"));
