import { createHash } from 'node:crypto';

/** How a release behaves once it runs (the lab's release flavours, plus a failing install). */
export interface ReleaseSpec {
  /**
   * badhealth: /health answers 500; nosocket: the process runs but never listens; slowboot: it
   * listens only after `bootProbes` connection attempts
   */
  flavour?: 'badhealth' | 'nosocket' | 'slowboot';
  bootProbes?: number;
  /** the install step fails in a checkout of this release */
  installFails?: boolean;
}

export function commitOf(repo: string, tag: string): string {
  return createHash('sha1').update(`${repo}\n${tag}`).digest('hex');
}

/** The git host's repository of one role: its tags, and whether hosts can reach it. */
export class Origin {
  readonly tags = new Map<string, { commit: string; spec: ReleaseSpec }>();
  reachable = true;
  /** git's first stderr line when origin cannot be reached */
  error = 'ssh: connect to host 10.0.0.5 port 22: Connection refused';

  constructor(readonly repo: string) {}

  tag(name: string, spec: ReleaseSpec = {}): this {
    this.tags.set(name, { commit: commitOf(this.repo, name), spec });
    return this;
  }

  commit(tag: string): string {
    const found = this.tags.get(tag);
    if (!found) throw new Error(`simulator setup: ${this.repo} has no tag ${tag}`);
    return found.commit;
  }

  /** how a tag behaves (an unknown one: like a good release) */
  spec(tag: string | undefined): ReleaseSpec {
    return (tag && this.tags.get(tag)?.spec) || {};
  }
}

/** A host's clone of an origin: HEAD and the tags it has fetched. */
export class Clone {
  head: string;
  readonly tags = new Map<string, string>();
  /** this host alone cannot reach origin (a firewall, a revoked key) */
  offline = false;

  constructor(
    readonly path: string,
    readonly origin: Origin,
    release: string,
    known: readonly string[] = [],
  ) {
    for (const tag of [release, ...known]) this.tags.set(tag, origin.commit(tag));
    this.head = origin.commit(release);
  }

  get reachable(): boolean {
    return this.origin.reachable && !this.offline;
  }

  /** the tag HEAD is exactly at, if any */
  tagAtHead(): string | undefined {
    return [...this.tags].find(([, commit]) => commit === this.head)?.[0];
  }
}
