package client

// Jitter exposes jitter to the tests.
var Jitter = jitter
