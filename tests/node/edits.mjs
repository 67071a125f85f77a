// The official OpenAI Node SDK against a running imagegate. Usage:
//   node edits.mjs <base_url> <dir with a.png, b.png, mask.png>
// Prints one JSON object with what each call returned (the SDK hands back the parsed JSON body
// and events unchanged, so they are what the gateway sent); the Python test asserts on it.
import fs from "node:fs";
import path from "node:path";
import OpenAI, { toFile } from "openai";

const [baseURL, dir] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0 });
const file = (name) => path.join(dir, name);
const out = {};

// fs.createReadStream goes through the SDK's hand-rolled streaming multipart: chunked, no
// Content-Length, every part typed application/octet-stream.
const single = await client.images.edit({
  model: "local/pillow",
  image: fs.createReadStream(file("a.png")),
  prompt: "invert",
});
out.single = single;

// toFile(buffer, name) with no type: undici FormData, application/octet-stream parts.
const list = await client.images.edit({
  model: "local/pillow",
  image: [await toFile(fs.readFileSync(file("a.png")), "a.png"),
          await toFile(fs.readFileSync(file("b.png")), "b.png")],
  prompt: "side by side",
});
out.list = list;

const masked = await client.images.edit({
  model: "local/pillow",
  image: fs.createReadStream(file("a.png")),
  mask: fs.createReadStream(file("mask.png")),
  prompt: "invert",
});
out.masked = masked;

const stream = await client.images.edit({
  model: "local/pillow",
  image: await toFile(fs.readFileSync(file("a.png")), "a.png", { type: "image/png" }),
  prompt: "grayscale",
  stream: true,
  partial_images: 1,
});
out.events = [];
for await (const event of stream) {
  out.events.push(event);
}

try {
  await client.images.edit({ model: "acme/none", image: fs.createReadStream(file("a.png")),
                             prompt: "invert" });
  out.notFound = "no error";
} catch (err) {
  out.notFound = { name: err.constructor.name, status: err.status, code: err.code,
                   requestID: err.requestID ?? null };
}

try {
  await client.images.edit({ model: "local/pillow", image: fs.createReadStream(file("a.png")),
                             prompt: "draw a dragon" });
  out.badPrompt = "no error";
} catch (err) {
  out.badPrompt = { name: err.constructor.name, status: err.status, param: err.param };
}

process.stdout.write(JSON.stringify(out));
