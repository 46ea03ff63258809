// Package controller is the controller's HTTP API (DESIGN.md §3.3) over a
// raft node of package lease, and Start, which runs one controller node
// (`uniter controller`). The wire types are in controller/api, the typed
// client in controller/client.
//
// # Protocol
//
// HTTP/1.1 over TLS only, and JSON under /v1, one `Authorization: Bearer
// TOKEN` per call. The server certificate is the node's, issued by the
// cluster CA that clients pin (docs/controller.md, "TLS"); a plain HTTP
// request gets Go's 400 and is never routed.
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
// The unit's watch is an agent's one blocking query: its index is the
// larger of the unit's and its application's modify indexes, which move
// with every change of what the unit watches (its record; its
// application's config, leader settings, lease and relations; the data of
// the relations whose scope it is in; its operation queue), and its
// answer carries all of it, the application's lease in full (as GET
// /v1/leases/{app} shows it) included, so that the agent's leadership
// tracker needs no watch of its own. GET /v1/leases/{app} stays for the
// CLI, and for agents against a node whose unit watch sends no lease. A
// unit watch that has to wait is parked without a goroutine (park.go).
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
//	POST   /v1/units                                 admin        {unit, token, config_schema?, actions?, endpoints?} → {index}
//	                                                              (actions, endpoints: protocol 4; actions dropped below)
//	GET    /v1/units/{app}/{n}/watch?index=&wait=    unit itself  → {life, resolved_id, resolved_no_retry,
//	                                                                 config_version, leader_settings_version, lease,
//	                                                                 operations:[{id, kind, action, status}],
//	                                                                 relations?} (blocking; see Relations)
//	POST   /v1/units/{app}/{n}/relation-data         unit itself  {term?, relations:[{relation, unit?:{k:v}, app?:{k:v}}]}
//	                                                              → {index} (one hook's commit: all or nothing)
//	GET    /v1/units/{app}/{n}/ports                 unit itself  → {ports:[{endpoint?, protocol, from?, to?}]} (the leader answers)
//	POST   /v1/units/{app}/{n}/ports                 unit itself  {open?:[range], close?:[range]} → {index} (protocol 5; ≤ 100 ranges)
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
//	GET    /v1/applications/{app}/relations          app's units  → {relations:[relation without data]}
//	POST   /v1/relations                             admin        {endpoints:["APP[:EP]","APP[:EP]"]} → {relation}
//	GET    /v1/relations                             admin        → {relations:[relation without data]}
//	GET    /v1/relations/{id}?index=&wait=           admin, the   → {relation} with the databags the caller may
//	                                                 relation's     read (blocking on the relation's index)
//	                                                 units
//	DELETE /v1/relations/{id}                        admin        → {index} (dying until its scope is empty)
//	POST   /v1/relations/{id}/enter-scope            unit itself  {unit, data?:{k:v}} → {index, version}
//	POST   /v1/relations/{id}/leave-scope            unit itself  {unit} → {index}
//	PATCH  /v1/relations/{id}/unit-data              unit itself  {unit, changes} ("" deletes) → {index, version}
//	PATCH  /v1/relations/{id}/app-data               unit itself  {unit, term, changes} → {index, version} (fenced)
//	GET    /v1/status                                admin        → DESIGN.md §5 status, and "relations"
//	GET    /v1/cluster/backup                        admin        → the state in lease's snapshot format (uniter controller backup)
//	GET    /v1/cluster/nodes?index=&wait=            anyone       → {nodes:[{id, address, raft_address, raft_state, suffrage,
//	                                                                 proto_min, proto_max}], effective_version} (blocking)
//	POST   /v1/cluster/join                          admin        {id, raft_addr, api_addr, proto_min?, proto_max?} → {index}
//	POST   /v1/cluster/announce                      node, admin  {id, raft_addr, api_addr, proto_min, proto_max} → {index}
//	POST   /v1/cluster/certificates                  admin        {id, csr} → {certificate, ca_cert, ca_key} (PEM; any node with
//	                                                                 the CA signs, nothing replicated: a joining node's first call)
//	POST   /v1/node/certificate/rotate               admin        → {id, serial, not_after, hosts}: the answering node (never
//	                                                                 forwarded) issues itself a new certificate
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
// # Relations
//
// Controller protocol 4 (the writes answer 409 needs-protocol while the
// cluster runs an older one; reads then find none). {id} is "N" or
// "endpoint:N" (an endpoint that is none of the relation's is 404
// unknown-relation, as is an unknown id: "relation 7: lease: relation not
// found"). A relation is {id, key:"web:db db:server", endpoints:[{app,
// name, role, interface}] (requirer first, or the one peers endpoint),
// interface, peer, life:"alive"|"dying", scope:[units in scope, sorted],
// app_data:{app:{values, version}}, unit_data:{unit:{values, version}},
// modify_index}. A databag's version is the raft index of the last change
// of a value: it only grows, also across leaving and re-entering scope.
//
// Registration with endpoints ({name:{role:"provider"|"requirer"|"peer",
// interface}}, from metadata.yaml) sets the application's; every peers
// endpoint gets its relation with the first unit. POST /v1/relations
// infers a left-out endpoint when exactly one pair relates, else refuses
// with 400 invalid-command naming the candidates (or none); 404
// unknown-application; 409 relation-exists.
//
// Who reads what (GET /v1/relations/{id}), as Juju's relation-get: the
// admin reads every databag. A unit of application A, which must be in
// the relation (else 403), reads its own unit databag, the unit databags
// of the units on the other side (of every other unit, in a peer
// relation), the other application's databag, and A's own databag only
// in a peer relation or while it holds A's lease. The agent turns an
// absent databag into relation-get's "permission denied" or "settings not
// found".
//
// Who writes what: a unit only its own unit databag, and only while in
// scope (409 not-in-scope); another unit's: 403. The application databag
// only A's leader, fenced exactly like leader settings: the state machine
// applies the write only if the unit holds the lease and term is the
// current term, else 409 not-leader ("not the leader"), so a deposed
// leader's write is refused even if its agent has not noticed. Writes to
// a dying relation are allowed (-departed and -broken hooks write).
// Limits: a key of 256 bytes, a value of 256 KiB, a databag of 512 KiB and
// 256 keys; over one, 413 limit-exceeded naming it ("cannot set relation
// data of relation 1: value of "v" is 262145 bytes; the limit is
// 262144"), nothing applied (the client refuses an over-long key or value
// itself, with the same text). A refused write changes nothing.
//
// A hook's commit: POST /v1/units/{app}/{n}/relation-data carries every
// relation write of one hook ({relation:"db:3", unit:{k:v}, app:{k:v}},
// one entry per relation) and is applied in one raft entry, each entry
// checked as the single writes are; if any is refused the whole commit
// is, and the error names the first relation refused ("cannot commit
// relation data of relation 3: not the leader"), so no reader ever sees
// a hook half applied. An agent commits at the end of a hook that exited
// 0 (Juju discards a failed hook's relation-set) and treats a refusal as
// the hook's failure.
//
// Scope: a unit enters a relation's scope after its -relation-created hook
// (enter-scope, with data seeding its unit databag, such as its
// private-address; again is a no-op) and leaves when the relation or the
// unit goes (leave-scope; the last unit to leave a dying relation removes
// it; deregistering a unit leaves every scope). A dying relation or unit
// may not enter: 409 cannot-enter-scope.
//
// The unit's watch view lists, in relations, every relation of its
// application by id: {id, endpoint, role, interface (this unit's side),
// remote_app (its own for a peer relation), peer, life, in_scope,
// unit_version (its own databag's, when in scope), members:{remote unit
// in scope: its unit databag's version}, remote_app_version (the remote
// application's databag, the own one for a peer relation),
// modify_index}. The watch wakes on a new or removed relation, a change
// of life or scope, and a change of data in a relation whose scope the
// unit is in. From two views an agent derives the hooks: a relation new
// to it: -created (then enter scope); a member new: -joined then
// -changed; a member's version grown: -changed; remote_app_version grown:
// -changed for the application; a member gone: -departed; life dying or
// the relation gone: -departed for every member, then -broken (never for
// a peer relation).
//
// In status, a unit's agent shows "lost" when it has reported before but
// not within the node's lost-after interval (default 1m) of the global
// time; agents report by setting a status, so they should set their agent
// status at least every lost-after/3.
package controller
