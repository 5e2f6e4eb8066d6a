%% @doc UDP reflectors on the `tuncer' API, for `make bench'
%% (scripts/bench.sh).
%%
%% Each reflector owns a TUN device and answers every IPv4 UDP datagram
%% routed through it by swapping the source and destination addresses and
%% ports; the checksums stay valid (swapping is checksum-neutral). Anything
%% else is counted and dropped. The three modes are the three ways of
%% reading from a `tuncer' device:
%%
%% <ul>
%% <li>`active_true': `{active, true}', one `{tuntap, Dev, Packet}' message
%%     per packet, no flow control from the owner.</li>
%% <li>`active_n': `{active, N}' (N = 128 by default), re-armed with
%%     `tuncer:setopt(Dev, {active, N})' on every `{tuntap_passive, Dev}'.</li>
%% <li>`batch': `{deliver, batch}' and `{active, N}': each
%%     `{tuntap_batch, Dev, Packets}' is answered with one
%%     `tuncer:sendv(Dev, Replies)'.</li>
%% <li>`passive': a loop of `tuncer:recv(Dev, 65535, Timeout)', which
%%     blocks without polling.</li>
%% </ul>
%%
%% From the shell:
%% ```
%% {ok, R} = bench_reflector:start(active_n, <<"tbench0">>, {198,18,0,1}, 24),
%% %% UDP to any 198.18.0.0/24 address but .1 comes back
%% bench_reflector:stats(R),   %% #{reflected => N, ignored => N, errors => N}
%% bench_reflector:stop(R).
%% '''
%% From the command line (how scripts/bench.sh runs it):
%% ```
%% erl -noshell -pa erlang/_build/default/lib/tunctl/ebin -pa examples/ebin \
%%     -run bench_reflector main active_n tbench0 198.18.0.1 24 10
%% '''
-module(bench_reflector).

-export([start/4, start/5, stats/1, stop/1, swap/1, main/1]).

-type mode() :: active_true | active_n | batch | passive.
-type stats() :: #{reflected := non_neg_integer(), ignored := non_neg_integer(),
                   errors := non_neg_integer()}.
-export_type([mode/0, stats/0]).

%% `{active, N}' when none is given.
-define(ACTIVE_N, 128).
%% recv/3 timeout in passive mode: only bounds how late a stop is seen.
-define(RECV_TIMEOUT, 1000).
-define(START_TIMEOUT, 20000).

-record(loop, {
    dev :: pid(),
    mode :: mode(),
    n :: pos_integer(),
    reflected = 0 :: non_neg_integer(),
    ignored = 0 :: non_neg_integer(),
    errors = 0 :: non_neg_integer()
}).

%%--------------------------------------------------------------------
%%% API
%%--------------------------------------------------------------------

%% @doc Start a reflector on a new TUN device `Name' with address
%% `Addr/Prefix', linked to the caller.
%% @equiv start(Mode, Name, Addr, Prefix, 128)
-spec start(mode(), iodata(), inet:ip4_address() | string(), 0..32) ->
    {ok, pid()} | {error, term()}.
start(Mode, Name, Addr, Prefix) ->
    start(Mode, Name, Addr, Prefix, ?ACTIVE_N).

%% @doc Start a reflector; `N' is the `{active, N}' count of mode
%% `active_n' (ignored by the other modes). The device is up when this
%% returns.
-spec start(mode(), iodata(), inet:ip4_address() | string(), 0..32, pos_integer()) ->
    {ok, pid()} | {error, term()}.
start(Mode, Name, Addr, Prefix, N) when
    (Mode =:= active_true orelse Mode =:= active_n orelse Mode =:= batch orelse Mode =:= passive),
    is_integer(N), N > 0, N =< 32767
->
    Parent = self(),
    Pid = spawn_link(fun() -> init(Parent, Mode, Name, Addr, Prefix, N) end),
    receive
        {Pid, Reply} -> Reply
    after ?START_TIMEOUT -> {error, timeout}
    end.

%% @doc Counters so far: datagrams reflected, packets ignored (not IPv4
%% UDP) and asynchronous errors (`{tuntap_error, Dev, _}').
-spec stats(pid()) -> stats().
stats(Pid) ->
    call(Pid, stats).

%% @doc Destroy the device and stop; returns the final counters.
-spec stop(pid()) -> stats().
stop(Pid) ->
    call(Pid, stop).

%% @doc The reply to an IPv4 UDP packet: addresses and ports swapped, as
%% iodata (a new 28-byte header and the payload as a sub-binary of `Packet',
%% so the payload is not copied). `ignore' for anything else, including
%% fragments after the first.
-spec swap(binary()) -> iodata() | ignore.
swap(<<4:4, IHL:4, Tos, Len:16, Id:16, Flags:3, 0:13, Ttl, 17, Csum:16,
       Src:4/binary, Dst:4/binary, Rest/binary>>) when IHL >= 5 ->
    OptLen = (IHL - 5) * 4,
    case Rest of
        <<Opts:OptLen/binary, SP:16, DP:16, Payload/binary>> ->
            [<<4:4, IHL:4, Tos, Len:16, Id:16, Flags:3, 0:13, Ttl, 17, Csum:16,
               Dst/binary, Src/binary, Opts/binary, DP:16, SP:16>>, Payload];
        _ ->
            ignore
    end;
swap(_) ->
    ignore.

%% @doc Command line entry: `[Mode, Name, Addr, Prefix, Seconds]' or
%% `[Mode, Name, Addr, Prefix, Seconds, N]', all strings (as `-run' passes
%% them). Starts the reflector, prints `ready NAME', runs for `Seconds',
%% prints the counters as `reflected=.. ignored=.. errors=..' and halts
%% the node. With the environment variable `BENCH_MSACC=Delay,Ms' it also
%% prints the microstate accounting (`msacc') of the `Ms' milliseconds
%% that start `Delay' milliseconds after it is ready.
-spec main([string()]) -> no_return().
main([Mode, Name, Addr, Prefix, Seconds | Rest]) ->
    N = case Rest of
        [NStr] -> list_to_integer(NStr);
        [] -> ?ACTIVE_N
    end,
    case start(list_to_existing_atom(Mode), Name, Addr, list_to_integer(Prefix), N) of
        {ok, Pid} ->
            io:format("ready ~s~n", [Name]),
            ok = msacc(os:getenv("BENCH_MSACC")),
            timer:sleep(list_to_integer(Seconds) * 1000),
            #{reflected := R, ignored := I, errors := E} = stop(Pid),
            io:format("reflected=~b ignored=~b errors=~b~n", [R, I, E]),
            erlang:halt(0);
        {error, Reason} ->
            io:format(standard_error, "bench_reflector: ~p~n", [Reason]),
            erlang:halt(1)
    end;
main(_) ->
    io:format(standard_error,
              "usage: bench_reflector main Mode Name Addr Prefix Seconds [N]~n", []),
    erlang:halt(1).

%%--------------------------------------------------------------------
%%% Internal functions
%%--------------------------------------------------------------------

msacc(Off) when Off =:= false; Off =:= "" ->
    ok;
msacc(DelayMs) ->
    [Delay, Ms] = [list_to_integer(X) || X <- string:lexemes(DelayMs, ",")],
    _ = spawn(fun() ->
        timer:sleep(Delay),
        true = msacc:start(Ms),
        msacc:print()
    end),
    ok.

call(Pid, Req) ->
    Ref = monitor(process, Pid),
    Pid ! {Req, self(), Ref},
    receive
        {Ref, Reply} ->
            demonitor(Ref, [flush]),
            Reply;
        {'DOWN', Ref, process, Pid, Reason} ->
            exit(Reason)
    end.

init(Parent, Mode, Name, Addr, Prefix, N) ->
    Opts = case Mode of
        active_true -> [{active, true}];
        active_n -> [{active, N}];
        batch -> [{active, N}, {deliver, batch}];
        passive -> [{active, false}]
    end,
    case tuncer:create(Name, [tun, no_pi | Opts]) of
        {ok, Dev} ->
            case tuncer:up(Dev, Addr, Prefix) of
                ok ->
                    Parent ! {self(), {ok, self()}},
                    State = #loop{dev = Dev, mode = Mode, n = N},
                    case Mode of
                        passive -> passive(State);
                        _ -> active(State)
                    end;
                {error, _} = Error ->
                    ok = tuncer:destroy(Dev),
                    Parent ! {self(), Error}
            end;
        {error, _} = Error ->
            Parent ! {self(), Error}
    end.

% {active, true} and {active, N}: one message per packet.
active(#loop{dev = Dev, n = N} = S) ->
    receive
        {tuntap, Dev, Packet} ->
            active(reflect(Packet, S));
        {tuntap_batch, Dev, Packets} ->
            active(reflect_all(Packets, S));
        {tuntap_passive, Dev} ->
            ok = tuncer:setopt(Dev, {active, N}),
            active(S);
        {tuntap_error, Dev, _} ->
            active(S#loop{errors = S#loop.errors + 1});
        {stats, From, Ref} ->
            From ! {Ref, counters(S)},
            active(S);
        {stop, From, Ref} ->
            finish(From, Ref, S)
    end.

% recv/3 in a loop; control messages are looked at between packets.
passive(#loop{dev = Dev} = S) ->
    receive
        {tuntap_error, Dev, _} ->
            passive(S#loop{errors = S#loop.errors + 1});
        {stats, From, Ref} ->
            From ! {Ref, counters(S)},
            passive(S);
        {stop, From, Ref} ->
            finish(From, Ref, S)
    after 0 ->
        case tuncer:recv(Dev, 65535, ?RECV_TIMEOUT) of
            {ok, Packet} ->
                passive(reflect(Packet, S));
            {error, timeout} ->
                passive(S);
            {error, Reason} ->
                exit({recv, Reason})
        end
    end.

reflect(Packet, #loop{dev = Dev} = S) ->
    case swap(Packet) of
        ignore ->
            S#loop{ignored = S#loop.ignored + 1};
        Reply ->
            ok = tuncer:send(Dev, Reply),
            S#loop{reflected = S#loop.reflected + 1}
    end.

% A batch: the replies leave in one sendv/2.
reflect_all(Packets, #loop{dev = Dev, reflected = R, ignored = I} = S) ->
    Replies = [Reply || P <- Packets, (Reply = swap(P)) =/= ignore],
    Len = length(Replies),
    ok = tuncer:sendv(Dev, Replies),
    S#loop{reflected = R + Len, ignored = I + length(Packets) - Len}.

finish(From, Ref, #loop{dev = Dev} = S) ->
    ok = tuncer:destroy(Dev),
    From ! {Ref, counters(S)},
    ok.

-spec counters(#loop{}) -> stats().
counters(#loop{reflected = R, ignored = I, errors = E}) ->
    #{reflected => R, ignored => I, errors => E}.
