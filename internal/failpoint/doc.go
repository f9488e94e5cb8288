// Package failpoint lets the crash tests kill posd at an exact step of the
// payment flow, to prove that the journal resumes from any of them. The
// points are named where the flow reaches them: "recorded" once a scan's
// order is committed, "<call>-answered" once the gateway answered a call,
// "<phase>-journaled" once the step that follows is on disk.
//
// POSD_FAILPOINT names the point; when the running process reaches it, it
// sends itself SIGKILL: no deferred call, no flush, as in a power cut. The
// variable is read once at start. Unset (always, in production), Hit costs
// one comparison and changes nothing.
package failpoint
