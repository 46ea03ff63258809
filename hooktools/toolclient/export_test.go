package toolclient

// WantsStdin is wantsStdin, for its table test.
var WantsStdin = wantsStdin
