import type { Step } from '../../../src/exec/command.js';
import type { Host } from '../../../src/config/inventory.js';
import { UnreachableError } from '../../../src/errors.js';
import { checkResult, type CommandListener, type CommandResult, type Executor, type HostSession } from '../../../src/exec/executor.js';
import { renderCommand } from '../../../src/exec/render.js';
import { dispatch } from './commands.js';
import type { SimHost } from './host.js';
import { evaluate, SimulatorGap, type Exec } from './shell.js';

export interface SimHosts {
  host(name: string): SimHost;
  /** every command the simulator could not answer; a run that leaves one here fails its test */
  readonly gaps: Error[];
}

/**
 * The Executor voxops gets in unit tests: each inventory host is a SimHost; every step's command
 * tree is evaluated like sh would, argv by argv, and recorded on the host. Results go through the
 * real checkResult, so okExitCodes and RemoteCommandError behave as over SSH.
 */
export class SimExecutor implements Executor {
  constructor(
    private readonly hosts: SimHosts,
    private readonly onCommand?: CommandListener,
  ) {}

  async connect(host: Host): Promise<HostSession> {
    const sim = this.hosts.host(host.name);
    await tick();
    if (sim.link.unreachable) {
      throw new UnreachableError(
        `${host.name} (${host.address}:${host.port}) is unreachable: connect ECONNREFUSED ${host.address}:${host.port}`,
      );
    }
    return new SimSession(host, sim, this.hosts, this.onCommand);
  }
}

/** a command answers on a later macrotask, as one over SSH would: concurrent steps interleave */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

class SimSession implements HostSession {
  private closed = false;

  constructor(
    readonly host: Host,
    private readonly sim: SimHost,
    private readonly hosts: SimHosts,
    private readonly onCommand: CommandListener | undefined,
  ) {}

  async run(step: Step): Promise<CommandResult> {
    const rendered = renderCommand(step.command);
    this.onCommand?.(this.host, step, rendered);
    await tick();
    const link = this.sim.link;
    if (this.closed || link.unreachable)
      throw new UnreachableError(`${this.host.name}: SSH connection lost (${this.closed ? 'closed' : 'read ECONNRESET'})`);
    link.commands += 1;
    if (link.lostAfterCommands !== undefined && link.commands > link.lostAfterCommands) {
      link.unreachable = true;
      throw new UnreachableError(`${this.host.name}: SSH connection lost during a command (read ECONNRESET)`);
    }
    const ran: string[] = [];
    const failure = this.sim.failSteps.get(step.name);
    if (failure !== undefined) {
      this.sim.failSteps.delete(step.name);
      return checkResult(this.host, step, { exitCode: failure, stdout: '', stderr: 'simulated failure', durationMs: 0 });
    }
    let result: Exec;
    try {
      result = evaluate(
        step.command,
        { cwd: '/', stdin: { data: step.stdin ?? '' } },
        (argv, ctx) => {
          ran.push(renderCommand({ kind: 'argv', argv: argv as [string, ...string[]] }));
          return dispatch(this.sim, argv, ctx);
        },
        (dir) => this.sim.fs.stat(dir)?.kind === 'dir',
      );
    } catch (error) {
      const gap = new SimulatorGap(`${this.host.name}: step "${step.name}": ${(error as Error).message}\n  in: ${rendered}`);
      this.hosts.gaps.push(gap);
      throw gap;
    }
    const sent = {
      step: step.name,
      command: rendered,
      readOnly: step.readOnly === true,
      ...(step.stdin !== undefined ? { stdin: step.stdin } : {}),
      ran,
      exitCode: result.exitCode,
    };
    this.sim.log.push(sent);
    for (const watch of this.sim.watchers) watch(sent);
    return checkResult(this.host, step, { ...result, durationMs: 0 });
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
