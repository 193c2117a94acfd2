// Package deploy holds the deployment example (kubernetes/) and the test that
// keeps it true to the worker: its settings, its probes and the topology.
package deploy
