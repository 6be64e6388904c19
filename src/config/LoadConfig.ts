import { Effect, Result } from "effect"
import {
  builtInCatalogue,
  type Catalogue,
  CatalogueError,
  mountedCataloguePath,
  parseCatalogue
} from "../catalogue/Catalogue.ts"
import type { HostFacts } from "../host/HostFacts.ts"
import type { EnvMap } from "./Env.ts"
import { type ConfigError, type Resolved, resolveConfig } from "./Resolve.ts"

export interface LoadedCatalogue {
  readonly catalogue: Catalogue
  readonly source: string
}

/** Loads `DISTROS_FILE`, else /config/distros.yaml when present, else the built-in catalogue. */
export const loadCatalogue = (
  env: EnvMap,
  host: HostFacts
): Effect.Effect<LoadedCatalogue, CatalogueError> =>
  Effect.suspend(() => {
    const explicit = env.DISTROS_FILE?.trim() || undefined
    const path =
      explicit ??
      (host.pathKind(mountedCataloguePath) === "file" ? mountedCataloguePath : undefined)
    if (path === undefined) {
      return Effect.fromResult(builtInCatalogue()).pipe(
        Effect.map((catalogue) => ({ catalogue, source: "the built-in catalogue" }))
      )
    }
    const text = host.readText(path)
    if (text === undefined) {
      const origin = explicit === undefined ? "" : " named by DISTROS_FILE"
      const problem = `cannot read the file${origin}; check that it exists and this user can read it`
      return Effect.fail(new CatalogueError({ source: path, problems: [problem] }))
    }
    return Effect.fromResult(parseCatalogue(text, path)).pipe(
      Effect.map((catalogue) => ({ catalogue, source: path }))
    )
  })

export const loadConfig = (
  env: EnvMap,
  host: HostFacts
): Effect.Effect<Resolved & LoadedCatalogue, ConfigError | CatalogueError> =>
  Effect.gen(function* () {
    const loaded = yield* loadCatalogue(env, host)
    const resolved = resolveConfig({
      env,
      host,
      catalogue: loaded.catalogue,
      catalogueSource: loaded.source
    })
    if (Result.isFailure(resolved)) return yield* Effect.fail(resolved.failure)
    return { ...resolved.success, ...loaded }
  })
