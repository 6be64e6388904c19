// Bun embeds text files imported with `{ type: "text" }` into the compiled binary.
declare module "*.yaml" {
  const text: string
  export default text
}
