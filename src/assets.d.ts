// Bun's bundler parses an imported .yaml file into data at build time; with
// `{ type: "text" }` it embeds the file's text instead.
declare module "*.yaml" {
  const value: unknown
  export default value
}
