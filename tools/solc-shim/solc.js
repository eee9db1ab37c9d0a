#!/usr/bin/env node
// A solc-compatible command-line shim over solc-js (the npm package `solc`, the Solidity team's
// wasm build). Native solc cannot be downloaded on every machine; this answers the two calls that
// the bindings' build script, forge and slither make:
//
//   solc --version
//   solc --standard-json [--base-path P] [--include-path P]... [--allow-paths P,...]  < input.json
//
// Imports that the standard-json input does not carry are read from disk, looked up (in order)
// relative to the base path, each include path, the working directory and the repository's
// node_modules. Reads are confined to those roots and any --allow-paths.
'use strict';

const fs = require('fs');
const path = require('path');

const repoRoot = path.resolve(__dirname, '..', '..');

function loadSolc() {
  try {
    return require(require.resolve('solc', { paths: [repoRoot, __dirname] }));
  } catch (err) {
    process.stderr.write(
      'gridlease solc shim: the npm package `solc` is not installed.\n' +
        `Run \`npm ci\` in ${repoRoot} (it pins the compiler version), or set SOLC to a native solc.\n`,
    );
    process.exit(127);
  }
}

function parseArgs(argv) {
  const opts = { version: false, standardJson: false, basePath: null, includePaths: [], allowPaths: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') ? arg.split(/=(.*)/s) : [arg, undefined];
    const value = () => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case '--version':
      case '-v':
        opts.version = true;
        break;
      case '--standard-json':
        opts.standardJson = true;
        break;
      case '--base-path':
        opts.basePath = value();
        break;
      case '--include-path':
        opts.includePaths.push(value());
        break;
      case '--allow-paths':
        opts.allowPaths.push(...value().split(',').filter(Boolean));
        break;
      case '--pretty-json':
      case '--no-import-callback':
        break;
      default:
        // Positional remappings or unknown flags are not part of the standard-json contract.
        break;
    }
  }
  return opts;
}

function importResolver(opts) {
  const roots = [
    opts.basePath,
    ...opts.includePaths,
    process.cwd(),
    path.join(repoRoot, 'node_modules'),
    repoRoot,
  ]
    .filter(Boolean)
    .map((p) => path.resolve(p));
  const allowed = [...roots, ...opts.allowPaths.map((p) => path.resolve(p))];
  const isAllowed = (file) => allowed.some((root) => file === root || file.startsWith(root + path.sep));

  return function findImports(importPath) {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : roots.map((root) => path.join(root, importPath));
    for (const file of candidates) {
      const resolved = path.resolve(file);
      if (!isAllowed(resolved)) continue;
      try {
        return { contents: fs.readFileSync(resolved, 'utf8') };
      } catch (_) {
        // try the next root
      }
    }
    return { error: `File not found: ${importPath} (searched ${roots.join(', ')})` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const solc = loadSolc();
  if (opts.version) {
    // Same shape as native solc, which forge and slither parse: the version is on the last line.
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    return;
  }
  if (!opts.standardJson) {
    process.stderr.write(
      'gridlease solc shim: only `--version` and `--standard-json` (input on stdin) are supported.\n',
    );
    process.exit(2);
  }
  const input = fs.readFileSync(0, 'utf8');
  const output = solc.compile(input, { import: importResolver(opts) });
  process.stdout.write(output);
}

main();
