// Package relay will carry process stdio, winsize and signals between the
// guest's processes and spool files under the state directory, each stream
// on its own yamux stream (agent.Client.OpenStream). It is empty until the
// containers and processes issue.
package relay
