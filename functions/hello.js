// A Node.js action: greets `name`.
function main(params) {
  return { payload: `hello ${params.name || "stranger"}` };
}
