import { Context, Duration, Effect, Layer, Schedule, type Scope } from "effect"
import { formatSize } from "./Files.ts"

/** Counters a download updates for every chunk; reading them is the reporter's job. */
export interface ProgressTracker {
  /** Adds bytes written to the target file. */
  readonly advance: (bytes: number) => void
  /** Restarts the count, after a resume plan changed (a server that ignored the range). */
  readonly reset: (done: number, total: number | undefined) => void
}

export interface ProgressSnapshot {
  readonly done: number
  readonly total: number | undefined
  /** Bytes per second over the recent window, or undefined before the second sample. */
  readonly rate: number | undefined
}

/** Interval between redraws of the terminal bar: smooth enough, and cheap. */
const barRefresh = Duration.millis(200)
/**
 * Interval between plain progress lines on a non-terminal: often enough to show a download is
 * alive in `docker logs`, rare enough that a 10-minute download writes 120 lines.
 */
const plainRefresh = Duration.seconds(5)
/** The rate is averaged over this many recent samples, so one slow chunk barely moves the ETA. */
const rateWindowSamples = 25

/** Formats whole seconds as `M:SS` or `H:MM:SS`; hours never wrap. */
export const formatEta = (seconds: number): string => {
  const whole = Math.max(0, Math.round(seconds))
  const hours = Math.floor(whole / 3600)
  const minutes = Math.floor((whole % 3600) / 60)
  const secs = String(whole % 60).padStart(2, "0")
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, "0")}:${secs}` : `${minutes}:${secs}`
}

const etaOf = ({ done, total, rate }: ProgressSnapshot): string | undefined =>
  total === undefined || done >= total || rate === undefined || rate <= 0
    ? undefined
    : formatEta((total - done) / rate)

const rateText = (rate: number | undefined): string =>
  rate === undefined ? "-- /s" : `${formatSize(Math.round(rate))}/s`

/** Renders the terminal bar: `label [#####-----]  45.0% 1.1 GiB/2.5 GiB 35.2 MiB/s ETA 0:37`. */
export const renderBar = (label: string, snapshot: ProgressSnapshot, width = 30): string => {
  const { done, total } = snapshot
  const eta = etaOf(snapshot)
  if (total === undefined || total <= 0) {
    return `${label} ${formatSize(done)} ${rateText(snapshot.rate)}`
  }
  const fraction = Math.min(1, done / total)
  const filled = Math.round(fraction * width)
  const bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`
  const percent = `${(fraction * 100).toFixed(1).padStart(5)}%`
  const sizes = `${formatSize(done)}/${formatSize(total)}`
  return (
    `${label} ${bar} ${percent} ${sizes} ${rateText(snapshot.rate)}` +
    (eta === undefined ? "" : ` ETA ${eta}`)
  )
}

/** Renders one plain log line for a non-terminal. */
export const renderLine = (label: string, snapshot: ProgressSnapshot): string => {
  const { done, total } = snapshot
  const eta = etaOf(snapshot)
  const amount =
    total === undefined
      ? formatSize(done)
      : `${formatSize(done)} of ${formatSize(total)} (${((done / total) * 100).toFixed(0)}%)`
  return (
    `${label}: ${amount}, ${rateText(snapshot.rate)}` +
    (eta === undefined ? "" : `, about ${eta} left`)
  )
}

/** Keeps recent (time, bytes) samples and derives the transfer rate from them. */
class RateWindow {
  private readonly samples: Array<{ readonly time: number; readonly done: number }> = []
  add(time: number, done: number): void {
    this.samples.push({ time, done })
    if (this.samples.length > rateWindowSamples) this.samples.shift()
  }
  clear(): void {
    this.samples.length = 0
  }
  rate(): number | undefined {
    const first = this.samples[0]
    const last = this.samples.at(-1)
    if (first === undefined || last === undefined || last.time <= first.time) return undefined
    return ((last.done - first.done) * 1000) / (last.time - first.time)
  }
}

type Render = (label: string, snapshot: ProgressSnapshot, final: boolean) => Effect.Effect<void>

/**
 * Shows download progress: a redrawn bar on a terminal, a plain line every few seconds
 * elsewhere, or nothing.
 */
export class Progress extends Context.Service<
  Progress,
  {
    /** Starts reporting for one transfer; reporting stops, with a final update, with the scope. */
    track(
      label: string,
      done: number,
      total: number | undefined
    ): Effect.Effect<ProgressTracker, never, Scope.Scope>
  }
>()("vm-runner/images/Progress") {
  /** A bar on stderr when it is a terminal, plain log lines otherwise. */
  static readonly layer = Layer.suspend(() =>
    process.stderr.isTTY === true ? Progress.layerBar : Progress.layerPlain(plainRefresh)
  )

  static readonly layerBar = Layer.succeed(
    Progress,
    Progress.of({
      track: (label, done, total) =>
        startReporter(label, done, total, barRefresh, (text, snapshot, final) =>
          Effect.sync(() => {
            // Erase the line, then redraw; the last redraw ends the line for the next log.
            process.stderr.write(`\r\x1b[2K${renderBar(text, snapshot)}${final ? "\n" : ""}`)
          })
        )
    })
  )

  static readonly layerPlain = (interval: Duration.Input) =>
    Layer.succeed(
      Progress,
      Progress.of({
        track: (label, done, total) =>
          startReporter(label, done, total, interval, (text, snapshot) =>
            Effect.logInfo(renderLine(text, snapshot))
          )
      })
    )

  static readonly layerSilent = Layer.succeed(
    Progress,
    Progress.of({
      track: () => Effect.succeed({ advance: () => {}, reset: () => {} })
    })
  )
}

const startReporter = (
  label: string,
  initialDone: number,
  initialTotal: number | undefined,
  interval: Duration.Input,
  render: Render
): Effect.Effect<ProgressTracker, never, Scope.Scope> =>
  Effect.gen(function* () {
    let done = initialDone
    let total = initialTotal
    const window = new RateWindow()
    const snapshot = (): ProgressSnapshot => {
      window.add(Date.now(), done)
      return { done, total, rate: window.rate() }
    }
    const tracker: ProgressTracker = {
      advance: (bytes) => {
        done += bytes
      },
      reset: (newDone, newTotal) => {
        done = newDone
        total = newTotal
        window.clear()
      }
    }
    window.add(Date.now(), done)
    yield* Effect.suspend(() => render(label, snapshot(), false)).pipe(
      Effect.delay(interval),
      Effect.repeat(Schedule.spaced(interval)),
      Effect.forkScoped
    )
    yield* Effect.addFinalizer(() => Effect.suspend(() => render(label, snapshot(), true)))
    return tracker
  })
