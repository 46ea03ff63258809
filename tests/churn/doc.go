// Package churn is the leadership churn of the end-to-end tests and of
// the B10 soak: a script of disturbances (agents killed, frozen and
// restarted, controller nodes killed and paused, step-downs in a config
// storm, a failing leader-deposed) run against units of the journal charm
// on a real controller, a recorder that follows the application's lease
// at the controller with blocking queries, and the checker that proves
// the leadership contract of DESIGN.md §4.4 over every is-leader answer,
// hook run and lease change the run recorded (Check).
//
// Every time here is CLOCK_MONOTONIC in nanoseconds (Now), the clock of
// the journal charm's records, so events seen by the harness, by the
// recorder and by hooks in other processes are comparable.
package churn
