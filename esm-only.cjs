'use strict'
// What require('aedes-dual-broker') and require() of its subpaths load: the package is ES modules
// only, and Node's own answer (ERR_PACKAGE_PATH_NOT_EXPORTED) does not say what to do instead.
// The code is Node's for this case, so loaders that fall back to import() on it still do.
const error = new Error(
  'aedes-dual-broker is ESM-only and cannot be loaded with require(). ' +
  "Use import (import { dualBroker } from 'aedes-dual-broker') in an ES module (\"type\": \"module\" in your package.json, or a .mjs/.mts file), " +
  "or dynamic import() from CommonJS (const { dualBroker } = await import('aedes-dual-broker')). " +
  'TypeScript: "module": "nodenext" and "moduleResolution": "nodenext" (README "Embedding in an existing Aedes").'
)
error.code = 'ERR_REQUIRE_ESM'
throw error
