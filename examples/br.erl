%% @doc A userspace Ethernet bridge over TAP devices (msantos/tunctl's `br'
%% example, on the `tuncer' API), with MAC learning.
%%
%% Every device is a switch port. A frame read from a port teaches the
%% bridge that its source MAC lives behind that port; it is then sent to the
%% port its destination MAC was learned on, or flooded to every other port
%% when the destination is broadcast, multicast or not known yet. A frame
%% whose destination lives behind the port it came from is dropped. Learned
%% addresses expire after `{ageing, Seconds}' (300 by default).
%%
%% ```
%% {ok, Br} = br:start(["erlbr0", "erl0", "erl1", "erl2"]),
%% %% move erl0.. into containers or namespaces (ip link set erl0 netns NS),
%% %% plug erlbr0 into a Linux bridge as the uplink, bring them up
%% br:macs(Br),    %% #{<<"erl0">> => [MAC, ...], ...}
%% br:stats(Br),
%% br:stop(Br).
%% '''
%%
%% Each port is read in `{active, N}' mode and re-armed on
%% `{tuntap_passive, Dev}', so a port flooding the bridge can never queue
%% more than `N' frames in its mailbox; the rest wait in the kernel.
-module(br).

-export([start/0, start/1, start/2, stop/1, macs/1, stats/1, ports/1]).

-define(ACTIVE, 64).
-define(BROADCAST, <<16#ff, 16#ff, 16#ff, 16#ff, 16#ff, 16#ff>>).

-type option() :: {ageing, pos_integer()}.

-record(port, {dev :: pid(), name :: binary(), rx = 0, tx = 0}).

-record(st, {
    % Dev => #port{}
    ports :: #{pid() => #port{}},
    % the devices, in the order given to start/1,2
    order :: [pid()],
    % MAC => {Dev, LastSeen (monotonic seconds)}
    macs = #{} :: #{binary() => {pid(), integer()}},
    ageing :: pos_integer(),
    stats = #{forwarded => 0, flooded => 0, filtered => 0, errors => 0, runts => 0} :: map()
}).

%% @doc Start a bridge with the original's two default ports.
%% @equiv start(["erlbr0", "erl0"])
-spec start() -> {ok, pid()} | {error, term()}.
start() ->
    start(["erlbr0", "erl0"]).

%% @equiv start(Ifaces, [])
-spec start([iodata()]) -> {ok, pid()} | {error, term()}.
start(Ifaces) ->
    start(Ifaces, []).

%% @doc Create one TAP device per name (`<<>>' lets the kernel pick) and
%% bridge them. Returns the bridge process, linked to the caller; the
%% devices go away with it.
-spec start([iodata()], [option()]) -> {ok, pid()} | {error, term()}.
start(Ifaces, Opts) when is_list(Ifaces), is_list(Opts) ->
    Parent = self(),
    Pid = spawn_link(fun() -> init(Parent, Ifaces, Opts) end),
    receive
        {Pid, Reply} -> Reply
    after 30000 -> {error, timeout}
    end.

%% @doc Destroy the devices and stop.
-spec stop(pid()) -> ok.
stop(Pid) -> call(Pid, stop).

%% @doc The learned MAC addresses, by port name.
-spec macs(pid()) -> #{binary() => [binary()]}.
macs(Pid) -> call(Pid, macs).

%% @doc Counters: bridge-wide `forwarded' (sent to one learned port),
%% `flooded', `filtered' (destination behind the ingress port), `errors',
%% `runts' (shorter than an Ethernet header), and per port
%% `#{Name => #{rx => N, tx => N}}' under `ports'.
-spec stats(pid()) -> map().
stats(Pid) -> call(Pid, stats).

%% @doc The port (device) names, in the order given to `start/1,2'.
-spec ports(pid()) -> [binary()].
ports(Pid) -> call(Pid, ports).

call(Pid, Req) ->
    Ref = monitor(process, Pid),
    Pid ! {br_call, self(), Ref, Req},
    receive
        {Ref, Reply} ->
            demonitor(Ref, [flush]),
            Reply;
        {'DOWN', Ref, process, Pid, Reason} ->
            exit({Reason, {?MODULE, Req}})
    end.

init(Parent, Ifaces, Opts) ->
    case create(Ifaces, []) of
        {ok, Devs} ->
            Ports = maps:from_list([{D, #port{dev = D, name = tuncer:devname(D)}} || D <- Devs]),
            Parent ! {self(), {ok, self()}},
            loop(#st{ports = Ports, order = Devs, ageing = proplists:get_value(ageing, Opts, 300)});
        {error, _} = Error ->
            Parent ! {self(), Error}
    end.

create([], Devs) ->
    {ok, lists:reverse(Devs)};
create([Name | Rest], Devs) ->
    case tuncer:create(Name, [tap, no_pi, {active, ?ACTIVE}]) of
        {ok, Dev} ->
            create(Rest, [Dev | Devs]);
        {error, Reason} ->
            [ok = tuncer:destroy(D) || D <- Devs],
            {error, {Name, Reason}}
    end.

loop(#st{ports = Ports} = St) ->
    receive
        {tuntap, Dev, Frame} when is_map_key(Dev, Ports) ->
            loop(switch(Dev, Frame, St));
        {tuntap_passive, Dev} when is_map_key(Dev, Ports) ->
            ok = tuncer:setopt(Dev, {active, ?ACTIVE}),
            loop(St);
        {tuntap_error, Dev, _Posix} when is_map_key(Dev, Ports) ->
            loop(bump(errors, St));
        {br_call, From, Ref, Req} ->
            case request(Req, St) of
                {stop, Reply} ->
                    [ok = tuncer:destroy(D) || D <- maps:keys(Ports)],
                    From ! {Ref, Reply};
                Reply ->
                    From ! {Ref, Reply},
                    loop(St)
            end
    end.

switch(In, <<Dst:6/binary, Src:6/binary, _/binary>> = Frame, #st{ports = Ports} = St) ->
    Now = erlang:monotonic_time(second),
    St1 = learn(Src, In, Now, St#st{ports = rx(In, Ports)}),
    case lookup(Dst, Now, St1) of
        In ->
            bump(filtered, St1);
        Out when is_pid(Out) ->
            ok = tuncer:send(Out, Frame),
            bump(forwarded, St1#st{ports = tx(Out, St1#st.ports)});
        flood ->
            Others = [D || D <- maps:keys(Ports), D =/= In],
            [ok = tuncer:send(D, Frame) || D <- Others],
            bump(flooded, St1#st{ports = lists:foldl(fun tx/2, St1#st.ports, Others)})
    end;
switch(In, _Runt, #st{ports = Ports} = St) ->
    bump(runts, St#st{ports = rx(In, Ports)}).

% Only unicast source addresses are learned.
learn(<<_:7, 0:1, _/binary>> = Src, In, Now, #st{macs = Macs} = St) ->
    St#st{macs = Macs#{Src => {In, Now}}};
learn(_, _, _, St) ->
    St.

lookup(<<_:7, 1:1, _/binary>>, _Now, _St) ->
    % broadcast and multicast
    flood;
lookup(Dst, Now, #st{macs = Macs, ageing = Ageing}) ->
    case Macs of
        #{Dst := {Dev, Seen}} when Now - Seen =< Ageing -> Dev;
        _ -> flood
    end.

request(macs, #st{macs = Macs, ports = Ports}) ->
    Names = maps:from_list([{P#port.name, []} || P <- maps:values(Ports)]),
    maps:fold(
        fun(Mac, {Dev, _}, Acc) ->
            #port{name = Name} = maps:get(Dev, Ports),
            maps:update_with(Name, fun(L) -> lists:sort([Mac | L]) end, Acc)
        end,
        Names,
        Macs
    );
request(stats, #st{stats = Stats, ports = Ports}) ->
    Stats#{ports => maps:from_list([{N, #{rx => Rx, tx => Tx}} || #port{name = N, rx = Rx, tx = Tx} <- maps:values(Ports)])};
request(ports, #st{ports = Ports, order = Order}) ->
    [(maps:get(D, Ports))#port.name || D <- Order];
request(stop, _St) ->
    {stop, ok};
request(_, _St) ->
    {error, badarg}.

rx(Dev, Ports) ->
    maps:update_with(Dev, fun(#port{rx = N} = P) -> P#port{rx = N + 1} end, Ports).

tx(Dev, Ports) ->
    maps:update_with(Dev, fun(#port{tx = N} = P) -> P#port{tx = N + 1} end, Ports).

bump(Key, #st{stats = Stats} = St) ->
    St#st{stats = maps:update_with(Key, fun(N) -> N + 1 end, Stats)}.
