%% @doc A point-to-point IP tunnel between two Erlang nodes, carried over
%% Erlang distribution (msantos/tunctl's `vpwn' example, on the `tuncer'
%% API).
%%
%% Each node owns a TUN device: the local one gets `LocalIP', the remote one
%% `RemoteIP', each with the other as its point-to-point peer. A packet the
%% kernel routes into one device is read by that node's `vpwn' process, sent
%% to the peer's `vpwn' process as an Erlang message and written to the
%% peer's device.
%%
%% Both nodes need `tunctl' (and its `tunctl_port') on their code path; this
%% module is loaded on the remote node by `start/3,4' when it is missing
%% there.
%%
%% ```
%% %% on node a@198.18.100.1, with b@198.18.100.2 running (same cookie):
%% {ok, Tunnel} = vpwn:start('b@198.18.100.2', "198.18.200.1", "198.18.200.2").
%% %% ping 198.18.200.2 from a's network namespace reaches b's
%% vpwn:stats(Tunnel).
%% vpwn:stop(Tunnel).
%% '''
%%
%% == Flow control ==
%%
%% With the default `{active, true}' each side forwards every packet its
%% device yields: if the remote side falls behind (a busy scheduler, a slow
%% device), the packets wait in its mailbox, without bound.
%%
%% `start(Node, LocalIP, RemoteIP, [{active, N}])' bounds that: each device
%% is put in `{active, N}' mode, where `N' is a credit granted by the peer. A
%% side returns credit only for packets it has written to its device (after
%% its `tuncer' process has handed them to the port), so at most `N' packets
%% are ever in flight towards a node. A side that runs out of credit gets
%% `{tuntap_passive, Dev}' and stops reading its device: the packets wait in
%% the kernel's queue of the device (and are dropped by the kernel when it
%% is full, as on any congested link) instead of in the remote node's memory.
%% The device is re-armed by the credit the peer sends back
%% (`tuncer:setopt(Dev, {active, K})' adds `K' to the counter).
%%
%% == Offloads and batches ==
%%
%% When both ends' `tunctl' support them (`features/0'), the tunnel by
%% default
%% <ul>
%% <li>creates its devices with `vnet_hdr' and
%%     `{offload, [csum, tso4, tso6, tso_ecn]}': the kernel hands over TCP
%%     segments of up to 64 KiB (GSO super-packets) with partial checksums,
%%     each behind its `virtio_net_hdr', and the other end's kernel accepts
%%     them as they are. A TCP stream then costs one message per ~64 KiB
%%     instead of one per 1500 bytes, whatever the MTU;</li>
%% <li>reads with `{deliver, batch}' and writes with `tuncer:sendv/2':
%%     all the packets ready at once travel as one message.</li>
%% </ul>
%% `{offload, false}' and `{deliver, packet}' turn them off (the tunnel is
%% then msantos/tunctl's example, packet by packet). Credit in
%% `{active, N}' mode counts packets either way.
-module(vpwn).

-export([start/3, start/4, stop/1, stats/1, devname/1, features/0]).
%% spawned on the remote node
-export([remote/4]).

-define(TIMEOUT, 15000).

-type ip() :: inet:ip4_address() | string().
-type option() ::
    {active, true | pos_integer()}
    | {devname, iodata()}
    | {mtu, pos_integer()}
    | {offload, boolean()}
    | {deliver, packet | batch}.

-export_type([option/0]).

-record(st, {
    dev :: pid(),
    peer :: pid(),
    % true | window size
    mode :: true | pos_integer(),
    % packets written to the device and not yet credited back to the peer
    unacked = 0 :: non_neg_integer(),
    stats = #{} :: #{atom() => integer()},
    % the negotiated options
    opts = [] :: [option()]
}).

%% @doc Start a tunnel to `Node' with the default `{active, true}' mode.
%% @equiv start(Node, LocalIP, RemoteIP, [])
-spec start(node(), ip(), ip()) -> {ok, pid()} | {error, term()}.
start(Node, LocalIP, RemoteIP) ->
    start(Node, LocalIP, RemoteIP, []).

%% @doc Start a tunnel to `Node': a TUN device here with `LocalIP', one on
%% `Node' with `RemoteIP'. Returns the local end, linked to the caller; the
%% remote end is linked to the local one, so the tunnel goes down (and both
%% devices away) when either end, either node or the connection dies.
%%
%% Options: `{active, true | N}' (see the module doc; `N' in 1..32767),
%% `{devname, Name}' (both devices, default: the kernel picks `tunN'),
%% `{mtu, MTU}', `{offload, Bool}' and `{deliver, packet | batch}' (both
%% default to on when both ends support them, see the module doc).
%% Anything else raises `badarg'.
-spec start(node(), ip(), ip(), [option()]) -> {ok, pid()} | {error, term()}.
start(Node, LocalIP, RemoteIP, Opts0) when is_atom(Node), is_list(Opts0) ->
    lists:all(fun valid/1, Opts0) orelse erlang:error(badarg, [Node, LocalIP, RemoteIP, Opts0]),
    Local = address(LocalIP),
    Remote = address(RemoteIP),
    Parent = self(),
    case net_adm:ping(Node) of
        pong ->
            ok = ensure_loaded(Node),
            Opts = negotiate(Opts0, rpc:call(Node, ?MODULE, features, [], ?TIMEOUT)),
            Pid = spawn_link(fun() -> local(Parent, Node, Local, Remote, Opts) end),
            receive
                {Pid, Reply} -> Reply
            after 2 * ?TIMEOUT ->
                unlink(Pid),
                exit(Pid, kill),
                {error, timeout}
            end;
        pang ->
            {error, {nodedown, Node}}
    end.

%% @doc Take the tunnel down (from either end): both devices are gone when
%% it returns.
-spec stop(pid()) -> ok.
stop(Pid) -> call(Pid, stop).

%% @doc Counters of this end: `to_peer' (packets read from the device and
%% sent), `from_peer' (packets received and written), `credit_in' /
%% `credit_out' (credit received / granted), `passive' (times the device
%% went passive waiting for credit), `errors' (`tuntap_error's),
%% `max_queue' (the longest mailbox seen when a packet arrived),
%% `max_packet' (the largest packet read from the device: above the MTU
%% when the kernel hands over GSO super-packets), and `devname', `mode',
%% `offload', `deliver' and `peer' (the other end's pid).
-spec stats(pid()) -> #{atom() => term()}.
stats(Pid) -> call(Pid, stats).

%% @doc What this node's `tunctl' offers the tunnel: `batch' (batch
%% delivery and `tuncer:sendv/2') and `offload' (`vnet_hdr' devices with
%% TUNSETOFFLOAD).
-spec features() -> [batch | offload].
features() ->
    {module, tuncer} = code:ensure_loaded(tuncer),
    case erlang:function_exported(tuncer, sendv, 2) of
        true -> [batch, offload];
        false -> []
    end.

%% @doc The name of this end's device.
-spec devname(pid()) -> binary().
devname(Pid) -> call(Pid, devname).

call(Pid, Req) ->
    Ref = monitor(process, Pid),
    Pid ! {vpwn_call, self(), Ref, Req},
    receive
        {Ref, Reply} ->
            demonitor(Ref, [flush]),
            Reply;
        {'DOWN', Ref, process, Pid, Reason} ->
            exit({Reason, {?MODULE, Req}})
    after ?TIMEOUT ->
        demonitor(Ref, [flush]),
        exit({timeout, {?MODULE, Req}})
    end.

%%--------------------------------------------------------------------
%%% The two ends
%%--------------------------------------------------------------------

local(Parent, Node, Local, Remote, Opts) ->
    process_flag(trap_exit, true),
    case device(Local, Remote, Opts) of
        {ok, Dev} ->
            Peer = spawn(Node, ?MODULE, remote, [self(), Remote, Local, Opts]),
            Mon = monitor(process, Peer),
            receive
                {vpwn_ready, Peer} ->
                    demonitor(Mon, [flush]),
                    true = link(Peer),
                    Parent ! {self(), {ok, self()}},
                    run(Dev, Peer, Opts);
                {vpwn_failed, Peer, Reason} ->
                    Parent ! {self(), {error, {remote, Reason}}};
                {'DOWN', Mon, process, Peer, Reason} ->
                    Parent ! {self(), {error, {remote, Reason}}}
            after ?TIMEOUT ->
                exit(Peer, kill),
                Parent ! {self(), {error, {remote, timeout}}}
            end;
        {error, _} = Error ->
            Parent ! {self(), Error}
    end.

%% @private
-spec remote(pid(), inet:ip4_address(), inet:ip4_address(), [option()]) -> ok.
remote(Peer, Local, Remote, Opts) ->
    process_flag(trap_exit, true),
    case device(Local, Remote, Opts) of
        {ok, Dev} ->
            true = link(Peer),
            Peer ! {vpwn_ready, self()},
            run(Dev, Peer, Opts);
        {error, Reason} ->
            Peer ! {vpwn_failed, self(), Reason},
            ok
    end.

% Both ends use what both support, unless told not to.
negotiate(Opts, RemoteFeatures) ->
    Both = [F || F <- features(), is_list(RemoteFeatures), lists:member(F, RemoteFeatures)],
    Offload = proplists:get_value(offload, Opts, true) andalso lists:member(offload, Both),
    Deliver =
        case proplists:get_value(deliver, Opts, batch) =:= batch andalso lists:member(batch, Both) of
            true -> batch;
            false -> packet
        end,
    [{offload, Offload}, {deliver, Deliver} | [O || {K, _} = O <- Opts, K =/= offload, K =/= deliver]].

device(Local, Remote, Opts) ->
    Name = proplists:get_value(devname, Opts, <<>>),
    Offload =
        case proplists:get_value(offload, Opts, false) of
            true -> [vnet_hdr, {offload, [csum, tso4, tso6, tso_ecn]}];
            false -> []
        end,
    Deliver =
        case proplists:get_value(deliver, Opts, packet) of
            batch -> [{deliver, batch}];
            packet -> []
        end,
    case tuncer:create(Name, [tun, no_pi, {active, false}] ++ Offload ++ Deliver) of
        {ok, Dev} ->
            % a /32 address with the other end as its point-to-point peer
            Steps = [
                fun() -> tuncer:up(Dev, Local) end,
                fun() -> tuncer:dstaddr(Dev, Remote) end
                | [fun() -> mtu(Dev, M) end || {mtu, M} <- Opts]
            ],
            Result = lists:foldl(
                fun
                    (Step, ok) -> Step();
                    (_, Error) -> Error
                end,
                ok,
                Steps
            ),
            case Result of
                ok ->
                    {ok, Dev};
                Error ->
                    ok = tuncer:destroy(Dev),
                    {error, {configure, Error}}
            end;
        {error, _} = Error ->
            Error
    end.

run(Dev, Peer, Opts) ->
    Mode =
        case proplists:get_value(active, Opts, true) of
            true -> true;
            N when is_integer(N), N > 0, N =< 32767 -> N
        end,
    % the initial credit: what the peer accepts in flight
    ok = tuncer:setopt(Dev, {active, Mode}),
    Stats = #{
        to_peer => 0,
        from_peer => 0,
        credit_in => 0,
        credit_out => 0,
        passive => 0,
        errors => 0,
        max_queue => 0,
        max_packet => 0
    },
    loop(#st{dev = Dev, peer = Peer, mode = Mode, stats = Stats, opts = Opts}).

loop(#st{dev = Dev, peer = Peer} = St) ->
    receive
        {tuntap, Dev, Packet} ->
            Peer ! {vpwn, self(), Packet},
            loop(largest([Packet], bump(to_peer, 1, St)));
        {tuntap_batch, Dev, Packets} ->
            Peer ! {vpwn_batch, self(), Packets},
            loop(largest(Packets, bump(to_peer, length(Packets), St)));
        {vpwn, Peer, Packet} ->
            ok = tuncer:send(Dev, Packet),
            loop(credit(1, queue_len(bump(from_peer, 1, St))));
        {vpwn_batch, Peer, Packets} ->
            ok = tuncer:sendv(Dev, Packets),
            K = length(Packets),
            loop(credit(K, queue_len(bump(from_peer, K, St))));
        {vpwn_credit, Peer, K} ->
            ok = tuncer:setopt(Dev, {active, K}),
            loop(bump(credit_in, K, St));
        {tuntap_passive, Dev} ->
            loop(bump(passive, 1, St));
        {tuntap_error, Dev, _Posix} ->
            loop(bump(errors, 1, St));
        {vpwn_call, From, Ref, stats} ->
            From ! {Ref, (St#st.stats)#{devname => tuncer:devname(Dev), mode => mode(St), peer => Peer,
                                        offload => proplists:get_value(offload, St#st.opts),
                                        deliver => proplists:get_value(deliver, St#st.opts)}},
            loop(St);
        {vpwn_call, From, Ref, devname} ->
            From ! {Ref, tuncer:devname(Dev)},
            loop(St);
        {vpwn_call, From, Ref, stop} ->
            unlink(Peer),
            Mon = monitor(process, Peer),
            Peer ! {vpwn_stop, self()},
            ok = tuncer:destroy(Dev),
            % both devices are gone when stop/1 returns
            receive
                {vpwn_stopped, Peer} -> ok;
                {'DOWN', Mon, process, Peer, _} -> ok
            after ?TIMEOUT -> ok
            end,
            demonitor(Mon, [flush]),
            From ! {Ref, ok};
        {vpwn_stop, Peer} ->
            ok = tuncer:destroy(Dev),
            Peer ! {vpwn_stopped, self()};
        {'EXIT', Dev, Reason} ->
            exit(Reason);
        {'EXIT', Peer, _} ->
            ok = tuncer:destroy(Dev);
        {'EXIT', _, Reason} ->
            % the parent (local end) or anything else linked
            ok = tuncer:destroy(Dev),
            exit(Reason)
    end.

% {active, N}: give the peer its credit back once half the window has been
% written. The synchronous call is a barrier: the tuncer process has handed
% every earlier send/2 to the port when it returns, so what is credited is
% no longer in any mailbox of this node.
credit(_K, #st{mode = true} = St) ->
    St;
credit(K, #st{mode = W, unacked = U, dev = Dev, peer = Peer} = St) ->
    Threshold = max(1, W div 2),
    case U + K of
        N when N >= Threshold ->
            _ = tuncer:devname(Dev),
            Peer ! {vpwn_credit, self(), N},
            bump(credit_out, N, St#st{unacked = 0});
        N ->
            St#st{unacked = N}
    end.

queue_len(#st{stats = #{max_queue := Max} = Stats} = St) ->
    {message_queue_len, Len} = process_info(self(), message_queue_len),
    case Len > Max of
        true -> St#st{stats = Stats#{max_queue := Len}};
        false -> St
    end.

% The largest packet read from the device so far (a GSO super-packet with
% offloads).
largest(Packets, #st{stats = #{max_packet := Max} = Stats} = St) ->
    case lists:max([byte_size(P) || P <- Packets]) of
        New when New > Max -> St#st{stats = Stats#{max_packet := New}};
        _ -> St
    end.

bump(Key, N, #st{stats = Stats} = St) ->
    St#st{stats = maps:update_with(Key, fun(V) -> V + N end, Stats)}.

mode(#st{mode = true}) -> {active, true};
mode(#st{mode = N}) -> {active, N}.

%%--------------------------------------------------------------------
%%% Helpers
%%--------------------------------------------------------------------

valid({active, true}) -> true;
valid({active, N}) -> is_integer(N) andalso N > 0 andalso N =< 32767;
valid({devname, Name}) -> is_binary(Name) orelse is_list(Name);
valid({mtu, MTU}) -> is_integer(MTU) andalso MTU > 0;
valid({offload, B}) -> is_boolean(B);
valid({deliver, D}) -> D =:= packet orelse D =:= batch;
valid(_) -> false.

address({_, _, _, _} = IP) ->
    IP;
address(IP) when is_list(IP) ->
    {ok, Addr} = inet:parse_ipv4strict_address(IP),
    Addr;
address(IP) when is_binary(IP) ->
    address(binary_to_list(IP)).

% Load this module on the remote node if it does not have it.
ensure_loaded(Node) ->
    case rpc:call(Node, code, ensure_loaded, [?MODULE], ?TIMEOUT) of
        {module, ?MODULE} ->
            ok;
        _ ->
            {?MODULE, Bin, File} = code:get_object_code(?MODULE),
            {module, ?MODULE} = rpc:call(Node, code, load_binary, [?MODULE, File, Bin], ?TIMEOUT),
            ok
    end.

% mtu/2 answers {ok, FD, Devname}, as msantos/tunctl 1.0.
mtu(Dev, MTU) ->
    case tuncer:mtu(Dev, MTU) of
        {ok, _, _} -> ok;
        {error, _} = Error -> Error
    end.
