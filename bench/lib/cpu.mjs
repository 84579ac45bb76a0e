// CPU used by a process group started with scripts/procs.mjs, read from /proc.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

let ticksPerSecond;
function clockTicks() {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/**
 * CPU milliseconds (user + system) used so far by the live processes of `child`'s process group, by role. For a
 * `wrangler dev` group: "runtime" is the workerd that runs the Worker together with local D1 and Queues (it is the
 * one with an inspector), "proxy" is the workerd in front of it that owns the public port, "wrangler" the Node
 * processes. Linux only; elsewhere it returns null and the report leaves the CPU columns out.
 */
export function groupCpuMs(child) {
  let pids;
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return null;
  }
  const ms = { runtime: 0, proxy: 0, wrangler: 0, other: 0 };
  for (const pid of pids) {
    let stat;
    let cmdline;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // Fields after the parenthesised command name: state ppid pgrp … utime(14) stime(15), counted from 1.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[2]) !== child.pid) continue;
    const used = ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks();
    const [program, ...args] = cmdline.split("\0");
    let role = "other";
    if (program.endsWith("workerd"))
      role = args.some((arg) => arg.startsWith("--inspector-addr")) ? "runtime" : "proxy";
    else if (program.endsWith("node")) role = "wrangler";
    ms[role] += used;
  }
  return ms;
}
