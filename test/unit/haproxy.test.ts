import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkCandidate,
  deriveServerName,
  FleetUrlError,
  haproxyAlerts,
  installCandidate,
  parseFleetServers,
  parseFleetUrl,
  parseInfoPid,
  parseShowStat,
  redactHaproxyConfig,
  renderHaproxyConfig,
  runtimeCommand,
  setServerState,
  type FleetServer,
} from '../../src/commands/haproxy.js';
import { ingressRole } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { anyCharacter } from './arbitraries.js';
import { renderCommand } from '../../src/exec/render.js';

const defaults = ingressRole.parse({});
const fleet: FleetServer[] = [
  { name: 'fleet1', host: '10.231.0.11', port: 80, maxconn: 4 },
  { name: 'fleet-2.b_x', host: 'fleet2.example.com', port: 8080, maxconn: 16 },
];

describe('roles.ingress defaults', () => {
  it('every setting has a default, so an inventory without roles.ingress works', () => {
    expect(defaults).toEqual({
      config: '/etc/haproxy/haproxy.cfg',
      unit: 'haproxy.service',
      backend: 'fleet',
      bind: ':80',
      fleetPort: 80,
      adminSocket: '/run/haproxy/admin.sock',
      health: { path: '/health/fleet', intervalMilliseconds: 1000, upTimeoutSeconds: 30 },
      drain: { timeoutSeconds: 3600 },
      tunnelTimeoutSeconds: 3600,
    });
  });

  it('refuses settings that would break the rendered file', () => {
    expect(ingressRole.safeParse({ backend: 'fleet x' }).success).toBe(false);
    expect(ingressRole.safeParse({ health: { path: '/health fleet' } }).success).toBe(false);
    expect(ingressRole.safeParse({ bind: ':80\n  bind :81' }).success).toBe(false);
    expect(ingressRole.safeParse({ bind: '10.0.0.1:443' }).success).toBe(true);
  });
});

describe('renderHaproxyConfig', () => {
  it('renders the whole file: maxconn = workers, capacity-aware check, WebSocket timeouts', () => {
    expect(renderHaproxyConfig(defaults, fleet)).toBe(`# Rendered by voxops (voxops deploy ingress / ingress add-fleet / remove-fleet).
# Hand edits are undone by the next render; the fleet list is environments.<env>.hosts.fleet.
global
    log /dev/log local0
    maxconn 4096
    stats socket /run/haproxy/admin.sock mode 660 level admin
    user haproxy
    group haproxy
    daemon

defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout queue 5s
    timeout check 2s
    timeout client 3600s
    timeout server 3600s
    timeout tunnel 3600s

frontend calls
    bind :80
    default_backend fleet

backend fleet
    balance leastconn
    # a refused connect or a 502/503 (no free worker on that host) is tried once more on another host
    retries 2
    option redispatch 1
    retry-on conn-failure 502 503
    # capacity-aware: a fleet host without a free worker leaves the rotation until one frees up
    option httpchk GET /health/fleet
    http-check expect rstring "\\"free\\": *[1-9]"
    default-server check inter 1000ms rise 1 fall 1
    server fleet1 10.231.0.11:80 maxconn 4
    server fleet-2.b_x fleet2.example.com:8080 maxconn 16

listen stats
    bind 127.0.0.1:8404
    stats enable
    stats uri /stats
`);
  });

  it('takes names, socket, bind, backend and timeouts from the settings; IPv6 in brackets; no maxconn when unknown', () => {
    const text = renderHaproxyConfig(
      { ...defaults, backend: 'voice', bind: '10.0.0.1:443', adminSocket: '/run/hx.sock', tunnelTimeoutSeconds: 7200 },
      [{ name: 'v6', host: 'fd00::12', port: 80 }],
    );
    expect(text).toContain('    server v6 [fd00::12]:80\n');
    expect(text).toContain('    bind 10.0.0.1:443\n    default_backend voice\n');
    expect(text).toContain('backend voice\n');
    expect(text).toContain('stats socket /run/hx.sock mode 660 level admin');
    expect(text).toContain('timeout tunnel 7200s');
  });

  it("the health check regex matches the fleet app's compact JSON only when a worker is free", () => {
    // what HAProxy's rstring receives, written with HAProxy's own double-quote escaping undone
    const line = renderHaproxyConfig(defaults, fleet)
      .split('\n')
      .find((l) => l.includes('rstring'))!;
    const pattern = new RegExp(/rstring "(.*)"$/.exec(line)![1]!.replace(/\\"/g, '"'));
    const body = (free: number) =>
      JSON.stringify({
        status: 'ok',
        expected_workers: 4,
        capacity: 4,
        healthy: 4,
        busy: 4 - free,
        active_calls: 4 - free,
        free,
        versions: ['v1.5.0'],
        workers: [],
      });
    expect(pattern.test(body(1))).toBe(true);
    expect(pattern.test(body(12))).toBe(true);
    expect(pattern.test(body(0))).toBe(false);
    expect(pattern.test('{"free": 2}')).toBe(true);
  });
});

describe('renderHaproxyConfig refuses what would add a directive', () => {
  const luaLoad = '/run/haproxy/admin.sock mode 660 level admin\n    lua-load /tmp/evil.lua\n#';

  it('refuses an admin socket with a newline or a space, in the inventory and in the renderer', () => {
    expect(ingressRole.safeParse({ adminSocket: luaLoad }).success).toBe(false);
    expect(ingressRole.safeParse({ adminSocket: '/run/haproxy/admin sock' }).success).toBe(false);
    expect(ingressRole.safeParse({ config: '/etc/haproxy/haproxy.cfg\0' }).success).toBe(false);
    expect(() => renderHaproxyConfig({ ...defaults, adminSocket: luaLoad }, fleet)).toThrow(ConfigError);
    expect(() => renderHaproxyConfig({ ...defaults, adminSocket: '/run/haproxy/a#b.sock' }, fleet)).toThrow(/roles\.ingress\.adminSocket/);
  });

  it('renders every number as a whole number in a sane range', () => {
    expect(ingressRole.safeParse({ tunnelTimeoutSeconds: 1e300 }).success).toBe(false);
    expect(ingressRole.safeParse({ tunnelTimeoutSeconds: 0.5 }).success).toBe(false);
    expect(() => renderHaproxyConfig({ ...defaults, tunnelTimeoutSeconds: 1e300 }, fleet)).toThrow(/tunnelTimeoutSeconds/);
    expect(() => renderHaproxyConfig(defaults, [{ name: 'f', host: '10.0.0.1', port: 80, maxconn: 1e21 }])).toThrow(/maxconn/);
    expect(() => renderHaproxyConfig(defaults, [{ name: 'f', host: '10.0.0.1', port: 0 }])).toThrow(/port/);
  });

  it('refuses a server whose name or host would be read as more than one word', () => {
    expect(() => renderHaproxyConfig(defaults, [{ name: 'f\n    lua-load /x', host: '10.0.0.1', port: 80 }])).toThrow(ConfigError);
    expect(() => renderHaproxyConfig(defaults, [{ name: 'f', host: '10.0.0.1 backup', port: 80 }])).toThrow(ConfigError);
    expect(() => renderHaproxyConfig(defaults, [{ name: 'f', host: 'a#b', port: 80 }])).toThrow(ConfigError);
  });
});

describe('parseFleetServers', () => {
  it('round-trips the renderer', () => {
    expect(parseFleetServers(renderHaproxyConfig(defaults, fleet), 'fleet', 80)).toEqual(fleet);
    const v6: FleetServer[] = [{ name: 'a', host: 'fd00::12', port: 8080, maxconn: 2 }];
    expect(parseFleetServers(renderHaproxyConfig(defaults, v6), 'fleet', 80)).toEqual(v6);
  });

  it('round-trips any list of safe names and addresses', () => {
    const server = fc.record({
      name: fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,20}$/),
      host: fc.oneof(fc.ipV4(), fc.domain()),
      port: fc.integer({ min: 1, max: 65535 }),
      maxconn: fc.integer({ min: 1, max: 256 }),
    });
    fc.assert(
      fc.property(fc.array(server, { maxLength: 6 }), (servers) => {
        const expected = servers.map((s) => ({ ...s, host: s.host.toLowerCase() }));
        expect(parseFleetServers(renderHaproxyConfig(defaults, expected), 'fleet', 80)).toEqual(expected);
      }),
    );
  });

  it("reads the lab's hand-written config, ignores other sections and comments, and tells a missing backend", () => {
    const handWritten = `global
    stats socket /run/haproxy/admin.sock mode 660 level admin
frontend calls
    bind :80
    default_backend fleet
backend fleet
    balance leastconn
    option httpchk GET /health
    server fleet1 10.231.0.11:80 check inter 1s fall 2 rise 1
    # server old 10.231.0.99:80
    server fleet2 10.231.0.12 check   # no port: the fleet port
listen stats
    server not-a-fleet 127.0.0.1:9000
`;
    expect(parseFleetServers(handWritten, 'fleet', 80)).toEqual([
      { name: 'fleet1', host: '10.231.0.11', port: 80 },
      { name: 'fleet2', host: '10.231.0.12', port: 80 },
    ]);
    expect(parseFleetServers(handWritten, 'voice', 80)).toBeUndefined();
    expect(parseFleetServers('', 'fleet', 80)).toBeUndefined();
  });
});

describe('parseFleetUrl', () => {
  it('accepts http://HOST[:PORT][/] with an IPv4, a DNS name or a bracketed IPv6', () => {
    expect(parseFleetUrl('http://10.231.0.12:80', 80)).toEqual({ host: '10.231.0.12', port: 80 });
    expect(parseFleetUrl('http://10.231.0.12', 80)).toEqual({ host: '10.231.0.12', port: 80 });
    expect(parseFleetUrl('http://Fleet-3.Example.com:8080/', 80)).toEqual({ host: 'fleet-3.example.com', port: 8080 });
    expect(parseFleetUrl('http://[fd00::12]:81', 80)).toEqual({ host: 'fd00::12', port: 81 });
    expect(parseFleetUrl('http://fleet3', 8000)).toEqual({ host: 'fleet3', port: 8000 });
  });

  it.each([
    '',
    '10.231.0.12:80',
    'https://10.231.0.12',
    'HTTP://10.231.0.12',
    'ws://10.231.0.12',
    'http://',
    'http://10.231.0.12:0',
    'http://10.231.0.12:65536',
    'http://10.231.0.12:8a',
    'http://10.231.0.12:80/health',
    'http://10.231.0.12/?x=1',
    'http://10.231.0.12#frag',
    'http://user@10.231.0.12',
    'http://user:pw@10.231.0.12',
    'http://999.1.1.1',
    'http://10.231.0',
    'http://-fleet',
    'http://fleet-',
    'http://fle_et',
    'http://a b',
    'http://fleet3;reboot',
    'http://$(reboot)',
    'http://`id`',
    "http://x'y",
    'http://fleet3\n    server evil 1.2.3.4:80',
    'http://fleet3\r',
    ' http://fleet3',
    'http://flëet',
    'http://fd00::12',
    'http://[fleet3]',
    'http://[fd00::12',
    'http://[::::]',
    `http://${'a'.repeat(64)}.com`,
  ])('refuses %j', (url) => {
    expect(() => parseFleetUrl(url, 80)).toThrow(FleetUrlError);
  });

  it('whatever it accepts is safe to render into the config and to pass to the runtime API', () => {
    fc.assert(
      fc.property(fc.string({ unit: anyCharacter, maxLength: 40 }), (tail) => {
        let parsed: { host: string; port: number } | undefined;
        try {
          parsed = parseFleetUrl(`http://${tail}`, 80);
        } catch (error) {
          expect(error).toBeInstanceOf(FleetUrlError);
          return;
        }
        expect(parsed.host).toMatch(/^[a-z0-9.:-]+$/);
        const name = deriveServerName(parsed, 80);
        expect(name).toMatch(/^fleet-[a-z0-9-]*$/);
        expect(() => setServerState('/run/haproxy/admin.sock', 'fleet', name, 'drain')).not.toThrow();
      }),
    );
  });
});

describe('deriveServerName', () => {
  it('derives safe, unique names for hosts that are not in the inventory', () => {
    expect(deriveServerName({ host: '10.231.0.13', port: 80 }, 80)).toBe('fleet-10-231-0-13');
    expect(deriveServerName({ host: 'fleet3.example.com', port: 8080 }, 80)).toBe('fleet-fleet3-example-com-8080');
    expect(deriveServerName({ host: 'fd00::12', port: 80 }, 80)).toBe('fleet-fd00-12');
    expect(deriveServerName({ host: '10.231.0.13', port: 80 }, 80, ['fleet-10-231-0-13', 'fleet-10-231-0-13-2'])).toBe(
      'fleet-10-231-0-13-3',
    );
  });
});

describe('runtime API and file steps', () => {
  it('talks to the admin socket with one command per connection, quoted by the renderer', () => {
    const step = setServerState('/run/haproxy/admin.sock', 'fleet', 'fleet2', 'drain');
    expect(step.readOnly).toBe(false);
    const rendered = renderCommand(step.command);
    expect(rendered.startsWith("python3 -c 'import socket, sys\n")).toBe(true);
    expect(rendered.endsWith(" /run/haproxy/admin.sock 'set server fleet/fleet2 state drain'")).toBe(true);
    // `;` chains runtime API commands: never let one through
    expect(() => runtimeCommand('/s', 'show stat; shutdown frontend calls', true)).toThrow(/unsafe/);
    expect(() => setServerState('/s', 'fleet', 'x;y', 'drain')).toThrow(/unsafe/);
  });

  it("checks the candidate beside the live file, then installs it with the live file's owner and mode, keeping a backup", () => {
    expect(renderCommand(checkCandidate('/etc/haproxy/haproxy.cfg').command)).toBe('haproxy -c -f /etc/haproxy/haproxy.cfg.voxops-new');
    expect(renderCommand(installCandidate('/etc/haproxy/haproxy.cfg').command)).toBe(
      '{ { test -e /etc/haproxy/haproxy.cfg && cp -p -- /etc/haproxy/haproxy.cfg /etc/haproxy/haproxy.cfg.voxops-prev && chown --reference=/etc/haproxy/haproxy.cfg -- /etc/haproxy/haproxy.cfg.voxops-new && chmod --reference=/etc/haproxy/haproxy.cfg -- /etc/haproxy/haproxy.cfg.voxops-new; } || chmod 644 -- /etc/haproxy/haproxy.cfg.voxops-new; } && mv -f -- /etc/haproxy/haproxy.cfg.voxops-new /etc/haproxy/haproxy.cfg',
    );
  });

  it('parses show stat, show info and haproxy -c alerts', () => {
    const csv = `# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,last_chk
calls,FRONTEND,,,2,5,4096,30,,,,,,,,,,OPEN,,,,,,,,,1,2,0,,,,0,,,,,,,,
fleet,fleet1,0,0,1,2,4,10,,,,,,,,,,UP,1,1,0,0,0,9,0,,1,3,1,,10,,2,,,,L7OK,200,2,,HTTP content check matched
fleet,fleet2,0,0,0,2,4,10,,,,,,,,,,DRAIN,1,1,0,0,0,9,0,,1,3,2,,10,,2,,,,L7OK,200,1,,
fleet,BACKEND,0,0,1,5,,30,,,,,,,,,,UP,2,2,0,,0,9,0,,1,3,0,,20,,1,,,,,,,,
`;
    expect(parseShowStat(csv)).toEqual([
      {
        backend: 'fleet',
        server: 'fleet1',
        status: 'UP',
        sessions: 1,
        totalSessions: 10,
        checkStatus: 'L7OK',
        lastCheck: 'HTTP content check matched',
      },
      { backend: 'fleet', server: 'fleet2', status: 'DRAIN', sessions: 0, totalSessions: 10, checkStatus: 'L7OK', lastCheck: '' },
    ]);
    expect(parseShowStat('')).toEqual([]);
    expect(parseInfoPid('Name: HAProxy\nVersion: 2.6.12\nPid: 4321\nUptime: 0d\n')).toBe(4321);
    expect(parseInfoPid('Unknown command\n')).toBeUndefined();
    const output = `[NOTICE]   (151) : haproxy version is 2.6.12-1+deb12u3
[ALERT]    (151) : config : [/etc/haproxy/haproxy.cfg.voxops-new:37] : 'server fleet/ghost' : could not resolve address 'ghost.invalid'.
[ALERT]    (151) : config : Failed to initialize server(s) addr.
`;
    expect(haproxyAlerts(output)).toEqual([
      "config : [/etc/haproxy/haproxy.cfg.voxops-new:37] : 'server fleet/ghost' : could not resolve address 'ghost.invalid'.",
      'config : Failed to initialize server(s) addr.',
    ]);
  });
});

describe('redactHaproxyConfig', () => {
  it('hides credentials in a diff -u of the live config, and keeps everything else', () => {
    const diff = `--- /etc/haproxy/haproxy.cfg
+++ /etc/haproxy/haproxy.cfg (rendered)
@@ -40,12 +40,9 @@
 listen stats
     bind 127.0.0.1:8404
-    stats auth admin:S3cret!
-    stats   auth ops:pw2 # second admin
+    stats uri /stats
-userlist ops
-    user alice password $6$salt$hash groups admins
-    user bob insecure-password hunter2
-    http-request auth realm VoxOps if !authorized
-    http-request set-header Authorization "Basic YWxpY2U6aHVudGVyMg=="
-    # stats auth old:secret
-    server backup https://svc:token123@10.0.0.9/
+    server fleet1 10.231.0.11:80 maxconn 4
`;
    expect(redactHaproxyConfig(diff)).toBe(`--- /etc/haproxy/haproxy.cfg
+++ /etc/haproxy/haproxy.cfg (rendered)
@@ -40,12 +40,9 @@
 listen stats
     bind 127.0.0.1:8404
-    stats auth ***
-    stats   auth ***
+    stats uri /stats
-userlist ops
-    user alice password *** groups admins
-    user bob insecure-password ***
-    http-request auth realm VoxOps if !authorized
-    http-request set-header Authorization ***
-    # stats auth ***
-    server backup https://svc:***@10.0.0.9/
+    server fleet1 10.231.0.11:80 maxconn 4
`);
  });

  it('takes the terminal escapes out first, so they cannot split a credential from its keyword', () => {
    expect(redactHaproxyConfig('    stats \u001b[0mauth admin:pw\n')).toBe('    stats auth ***\n');
  });
});
