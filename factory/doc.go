// Package factory will decide how a VM is made: new (today's only way,
// done by sandbox's boot steps), from a template (guest RAM as a shared
// file, see qmp.Config.MemoryPath, restored with -incoming) or from a cache
// of pre-booted VMs. create refuses factory=template|cache until then.
package factory
