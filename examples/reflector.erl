%% @doc A packet reflector built on the `tuncer' API: it owns a TUN device
%% and answers ICMP echo requests (IPv4 and IPv6) and UDP datagrams (any
%% port) sent to any address routed through the device, by swapping source
%% and destination. `make demo' and the tests use it.
%%
%% ```
%% {ok, R} = reflector:start(<<"refl0">>, [{{198,18,0,1}, 24}, {"2001:db8::1", 64}]),
%% %% ping 198.18.0.2 / ping 2001:db8::2 / any UDP to 198.18.0.0/24 is answered
%% reflector:stats(R),   %% #{icmp => N, icmp6 => N, udp => N, ignored => N}
%% reflector:stop(R).
%% '''
-module(reflector).

-export([start/2, stats/1, devname/1, stop/1, reflect/1]).

-spec start(iodata(), [{inet:ip_address() | string(), 0..128}]) -> {ok, pid()} | {error, term()}.
start(Name, Addrs) ->
    Parent = self(),
    Pid = spawn_link(fun() -> init(Parent, Name, Addrs) end),
    receive
        {Pid, Reply} -> Reply
    after 10000 -> {error, timeout}
    end.

%% @doc Counters of what was reflected and ignored.
-spec stats(pid()) -> #{atom() => non_neg_integer()}.
stats(Pid) -> call(Pid, stats).

%% @doc The name of the reflector's device.
-spec devname(pid()) -> binary().
devname(Pid) -> call(Pid, devname).

%% @doc Destroy the device and stop.
-spec stop(pid()) -> ok.
stop(Pid) -> call(Pid, stop).

call(Pid, Req) ->
    Ref = monitor(process, Pid),
    Pid ! {Req, self(), Ref},
    receive
        {Ref, Reply} -> demonitor(Ref, [flush]), Reply;
        {'DOWN', Ref, process, Pid, Reason} -> exit(Reason)
    end.

init(Parent, Name, Addrs) ->
    case tuncer:create(Name, [tun, no_pi, {active, true}]) of
        {ok, Dev} ->
            [ok = tuncer:addr_add(Dev, IP, Len) || {IP, Len} <- Addrs],
            Parent ! {self(), {ok, self()}},
            loop(Dev, #{icmp => 0, icmp6 => 0, udp => 0, ignored => 0});
        Error ->
            Parent ! {self(), Error}
    end.

loop(Dev, Stats) ->
    receive
        {tuntap, Dev, Pkt} ->
            case reflect(Pkt) of
                {Kind, Reply} ->
                    ok = tuncer:send(Dev, Reply),
                    loop(Dev, maps:update_with(Kind, fun(N) -> N + 1 end, Stats));
                ignore ->
                    loop(Dev, maps:update_with(ignored, fun(N) -> N + 1 end, Stats))
            end;
        {tuntap_error, Dev, Reason} ->
            io:format(standard_error, "reflector: ~p~n", [Reason]),
            loop(Dev, Stats);
        {stats, From, Ref} ->
            From ! {Ref, Stats},
            loop(Dev, Stats);
        {devname, From, Ref} ->
            From ! {Ref, tuncer:devname(Dev)},
            loop(Dev, Stats);
        {stop, From, Ref} ->
            ok = tuncer:destroy(Dev),
            From ! {Ref, ok}
    end.

%% @doc The reply to an IP packet, or `ignore'. Swapping addresses and ports
%% leaves UDP and ICMPv6 checksums valid (their pseudo-header sum does not
%% depend on the order); the echo type change is patched incrementally.
-spec reflect(binary()) -> {icmp | icmp6 | udp, binary()} | ignore.
reflect(<<4:4, IHL:4, Hdr1:8/binary, Proto, HCsum:16, Src:4/binary, Dst:4/binary, Rest/binary>>)
  when IHL >= 5 ->
    OptLen = (IHL - 5) * 4,
    case {Proto, Rest} of
        {1, <<Opts:OptLen/binary, 8, Code, Csum:16, Body/binary>>} ->
            {icmp, <<4:4, IHL:4, Hdr1/binary, Proto, HCsum:16, Dst/binary, Src/binary,
                     Opts/binary, 0, Code, (csum_adjust(Csum, 8 bsl 8, 0)):16, Body/binary>>};
        {17, <<Opts:OptLen/binary, SP:16, DP:16, Body/binary>>} ->
            {udp, <<4:4, IHL:4, Hdr1/binary, Proto, HCsum:16, Dst/binary, Src/binary,
                    Opts/binary, DP:16, SP:16, Body/binary>>};
        _ ->
            ignore
    end;
reflect(<<6:4, _/bitstring>> = Pkt) ->
    reflect6(Pkt);
reflect(_) ->
    ignore.

reflect6(<<Fixed:6/binary, 58, Hop, Src:16/binary, Dst:16/binary, 128, Code, Csum:16, Body/binary>>) ->
    {icmp6, <<Fixed/binary, 58, Hop, Dst/binary, Src/binary, 129, Code,
              (csum_adjust(Csum, 128 bsl 8, 129 bsl 8)):16, Body/binary>>};
reflect6(<<Fixed:6/binary, 17, Hop, Src:16/binary, Dst:16/binary, SP:16, DP:16, Body/binary>>) ->
    {udp, <<Fixed/binary, 17, Hop, Dst/binary, Src/binary, DP:16, SP:16, Body/binary>>};
reflect6(_) ->
    ignore.

%% RFC 1624: HC' = ~(~HC + ~m + m')
csum_adjust(Csum, Old, New) ->
    S = (bnot Csum band 16#ffff) + (bnot Old band 16#ffff) + New,
    S1 = (S band 16#ffff) + (S bsr 16),
    S2 = (S1 band 16#ffff) + (S1 bsr 16),
    bnot S2 band 16#ffff.
