// Package controller is the controller's HTTP API (DESIGN.md §3.3) over a
// raft node of package lease, and Start, which runs one controller node
// (`uniter controller`). The wire types are in controller/api, the typed
// client in controller/client.
//
// # Protocol
//
// HTTP/1.1 and JSON under /v1, one `Authorization: Bearer TOKEN` per call.
// The admin token (generated at bootstrap; the node keeps only its SHA-256
// in DATA_DIR/admin-token.sha256, the plaintext is only in the admin
// client.yaml, 0600) may do everything. A unit token (registered by the
// admin; the FSM keeps its SHA-256) may act only as its own unit and read
// only its own application.
//
// Every non-2xx answer is one line of JSON, {"error":"...","code":"..."}
// (plus "lease" on lease refusals): 401 unauthorized (no token, or one the
// caught-up raft leader does not know: a follower forwards an unknown
// token to the leader, and a node that knows no leader, or leads but has
// not applied its predecessor's entries yet, answers 503 instead),
// 403 forbidden (a unit acting for another unit or application, or doing
// an admin action), 400 bad-request (malformed JSON, unknown fields,
// trailing data, bad names, durations or queries) or the lease codes
// invalid-command / invalid-config, or invalid-params (action params the
// action's schema refuses), 404 unknown-application, unknown-unit,
// unknown-relation, unknown-operation, unknown-action or not-found, 405 method-not-allowed, 409 with the lease code of a
// refusal (claim-denied, not-holder, not-leader, pinned, no-leader, ...),
// 413 too-large (bodies over 1 MiB), 503 unavailable, busy or the lease
// codes retryable / not-raft-leader / node-closed (retry, possibly on
// another node). A refused request changes nothing. A feature that needs a
// newer controller protocol than the cluster runs is 409 needs-protocol
// ("... needs cluster protocol 2; the cluster runs 1 (upgrade every
// controller node)"); a node whose protocol range excludes the cluster's
// version is refused with 409 version-unsupported (docs/upgrades.md).
//
// Controller nodes authenticate to each other's API with the node
// credential (NodeToken, derived from the admin token hash every node
// keeps), which may only announce a member (POST /v1/cluster/announce).
//
// Reads are answered by any node from its FSM. Writes are applied on the
// raft leader: a follower forwards the request, body and token unchanged,
// to the leader's API address (from the FSM's member records) with
// X-Uniter-Forwarded set, and relays the answer; a request that was
// already forwarded, or one made while no leader is known, gets 503 and
// the client retries. Every write is safe to retry. Every answer to a
// write carries X-Uniter-Leader, the raft leader's API address as the
// answering node knows it; the Go client sends its later writes there when
// that address is one of its own, which saves the forwarding hop.
//
// Blocking queries (Consul's pattern): GET with ?index=N&wait=D answers as
// soon as the resource's modify index exceeds N, or after D (default and
// cap 5m), with the index in X-Uniter-Index; without index (or 0) they
// answer at once. The answers to claim, extend and revoke carry
// X-Uniter-Index too, refusals (409) included: the raft index at which the
// lease was written, or read for a refusal, which orders them against the
// watch's answers (an older controller sent none on refusals; agents then
// confirm with an extend). At most MaxBlocking (default 8192) wait at once per node
// (then 503 busy, and a warning at most once a minute). A write wakes only
// the queries on the application or unit it changed.
//
// # Endpoints
//
//	method path                                      who          body → answer
//	POST   /v1/leases/{app}/claim                    unit itself  {unit, duration:"30s"} → {lease}
//	POST   /v1/leases/{app}/extend                   unit itself  {unit, duration, term?} → {lease}
//	POST   /v1/leases/{app}/revoke                   unit itself  {unit, term?} → {lease}
//	GET    /v1/leases/{app}?index=&wait=             app's units  → {lease} (blocking)
//	POST   /v1/leases/{app}/step-down                admin        {term?} → {lease}
//	POST   /v1/leases/{app}/pin                      admin        {entity, reason, for?:"10m"} → {lease}
//	POST   /v1/leases/{app}/unpin                    admin        {entity} → {lease}
//	POST   /v1/units                                 admin        {unit, token, config_schema?, actions?} → {index}
//	                                                              (actions: kept from protocol 4, dropped below)
//	GET    /v1/units/{app}/{n}/watch?index=&wait=    unit itself  → {life, resolved_id, resolved_no_retry,
//	                                                                 config_version, leader_settings_version, lease,
//	                                                                 operations:[{id, kind, action, status}]}
//	POST   /v1/units/{app}/{n}/status                unit itself  {kind:"workload"|"agent", status, message} → {index}
//	POST   /v1/units/{app}/{n}/application-version   unit itself  {version} → {index}
//	POST   /v1/units/{app}/{n}/remove                admin        → {index} (unit dying)
//	POST   /v1/units/{app}/{n}/resolved              admin        {no_retry, after?} → {index}
//	DELETE /v1/units/{app}/{n}                       admin, unit  → {lease} (deregistered)
//	GET    /v1/applications/{app}/config             app's units  → {values, version, schema}
//	PATCH  /v1/applications/{app}/config             admin        {changes:{k:v}, if_version?} ("" deletes) → {index}
//	                                                              (if_version: protocol 2; 409 stale-config)
//	GET    /v1/applications/{app}/leader-settings    app's units  → {values, version}
//	PATCH  /v1/applications/{app}/leader-settings    unit itself  {unit, term, changes} → {index} (fenced: 409 not-leader)
//	POST   /v1/applications/{app}/status             unit itself  {unit, term, status, message} → {index} (fenced)
//	GET    /v1/applications/{app}/status             app's units  → the application's part of the status (status-get)
//	GET    /v1/applications/{app}/actions            app's units  → {actions:{name:{description, schema}}}
//	POST   /v1/operations                            admin        {key?, unit:"APP/N"|"APP/leader", action, params?} or
//	                                                              {key?, unit, command, timeout?:"5m"} → {operation}
//	                                                              (400 invalid-params, 404 unknown-action, 409 no-leader)
//	GET    /v1/operations?app=&unit=&status=a,b      admin        → {operations:[...]} (no params, results or log)
//	GET    /v1/operations/{id}?index=&wait=          admin, unit  → {operation} (blocking; the operation's unit only)
//	POST   /v1/operations/{id}/cancel                admin        → {operation} (pending only: 409 operation-status)
//	POST   /v1/operations/{id}/start                 its unit     → {operation} (pending → running, params included)
//	POST   /v1/operations/{id}/log                   its unit     {seq, message} → {index}
//	POST   /v1/operations/{id}/finish                its unit     {status:"completed"|"failed", message?, results?} → {operation}
//	POST   /v1/operations/{id}/abort                 its unit     {message?} → {operation} (running → aborted)
//	GET    /v1/status                                admin        → DESIGN.md §5 status
//	GET    /v1/cluster/backup                        admin        → the state in lease's snapshot format (uniter controller backup)
//	GET    /v1/cluster/nodes?index=&wait=            anyone       → {nodes:[{id, address, raft_address, raft_state, suffrage,
//	                                                                 proto_min, proto_max}], effective_version} (blocking)
//	POST   /v1/cluster/join                          admin        {id, raft_addr, api_addr, proto_min?, proto_max?} → {index}
//	POST   /v1/cluster/announce                      node, admin  {id, raft_addr, api_addr, proto_min, proto_max} → {index}
//	GET    /v1/health                                no token     → 200 {status:"ok", node} while the process serves
//	GET    /v1/ready                                 no token     → 200 {status:"ready"} when the node knows a raft leader and
//	                                                                 is caught up, else 503 {status:"not ready", reason}
//	DELETE /v1/cluster/nodes/{id}                    admin        → {index}
//
// "unit itself" also admits the admin; "app's units" means any unit of
// that application, or the admin; "its unit" is the agent of the
// operation's unit alone (not the admin, who could fake its results).
// An operation is {id:"7", unit, kind:"action"|"exec", action, params,
// command, timeout, status, message, results, log:[{time, message}],
// enqueued, started, completed}; the operation endpoints need controller
// protocol 4 (409 needs-protocol below it), and every answer about one
// operation carries its modify index in X-Uniter-Index. A lease is {holder, term, start,
// duration:"30s", expiry, pins:[{entity, reason, since, until}],
// step_down}; holder is "" when vacant.
//
// In status, a unit's agent shows "lost" when it has reported before but
// not within the node's lost-after interval (default 1m) of the global
// time; agents report by setting a status, so they should set their agent
// status at least every lost-after/3.
package controller
