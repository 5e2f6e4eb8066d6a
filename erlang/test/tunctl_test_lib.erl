%% Helpers shared by the common_test suites: where we are, what the kernel
%% sees, and how to wait for it. Every suite refuses to run outside a private
%% network namespace (scripts/in-netns sets TUNCTL_OUTER_NETNS).
-module(tunctl_test_lib).

-include_lib("stdlib/include/assert.hrl").

-export([init_suite/1, private_netns/0, port_program/0, ip/1, exists/1, wait_gone/2, wait_dead/2, wait_fds/2,
         alive/1, wait/3, fd_count/1, my_ports/0, rss_kb/1, port_os_pid/1, count_lines/1, to_string/1]).
-export([udp_setup/3, recv_until/2, active_match/3, is_udp_to/2, parse_udp/1, reflect/1, udp4/5]).

%% @doc init_per_suite: skip outside a private namespace or without the binary.
init_suite(Config) ->
    case private_netns() of
        false ->
            {skip, "refusing to run outside a private network namespace: use `make ct` (scripts/in-netns)"};
        true ->
            {ok, _} = application:ensure_all_started(tunctl),
            case filelib:is_regular(port_program()) of
                true -> Config;
                false -> {skip, "priv/tunctl_port not built: make -C .. priv/tunctl_port"}
            end
    end.

%% @doc The port program tunctl starts by default.
port_program() ->
    filename:join(code:priv_dir(tunctl), "tunctl_port").

%% @doc True in a namespace other than the one scripts/in-netns started from
%% (or than init's, when that can be read).
private_netns() ->
    {ok, Self} = file:read_link("/proc/self/ns/net"),
    case os:getenv("TUNCTL_OUTER_NETNS") of
        false ->
            case file:read_link("/proc/1/ns/net") of
                {ok, Init} -> Init =/= Self;
                {error, _} -> false
            end;
        Outer ->
            Outer =/= Self
    end.

ip(Args) -> os:cmd("ip " ++ Args ++ " 2>&1").

exists(Name) ->
    string:find(ip("-o link show " ++ to_list(Name)), "does not exist") =:= nomatch.

%% @doc Wait up to Ms for an interface to disappear.
wait_gone(Name, Ms) ->
    wait(fun() -> not exists(Name) end, Ms, {still_exists, Name}).

%% @doc Wait up to Ms for an OS process to die (a zombie counts as dead).
wait_dead(OsPid, Ms) ->
    wait(fun() -> not alive(OsPid) end, Ms, {still_alive, OsPid}).

%% @doc Wait up to Ms for this BEAM to hold N open file descriptors again.
wait_fds(N, Ms) ->
    wait(fun() -> fd_count("self") =:= N end, Ms, {fds, fd_count("self"), N}).

%% @doc Wait up to Ms for Done() to be true; else error(Failure).
wait(Done, Ms, Failure) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    wait_until(Done, Deadline, Failure).

wait_until(Done, Deadline, Failure) ->
    case Done() of
        true -> ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> error(Failure);
                false -> timer:sleep(10), wait_until(Done, Deadline, Failure)
            end
    end.

alive(OsPid) ->
    case file:read_file("/proc/" ++ to_list(OsPid) ++ "/stat") of
        {ok, Stat} ->
            [_, AfterComm] = string:split(Stat, ") ", trailing),
            not lists:member(binary:first(AfterComm), [$Z, $X]);
        {error, _} ->
            false
    end.

%% @doc Open file descriptors of an OS process ("self" for this BEAM).
fd_count(OsPid) ->
    {ok, Fds} = file:list_dir("/proc/" ++ to_list(OsPid) ++ "/fd"),
    length(Fds).

%% @doc Number of tunctl_port processes started by this BEAM (OTP spawns
%% ports through its erl_child_setup helper, a child of the BEAM).
my_ports() ->
    Setup = string:trim(os:cmd("pgrep -x -P " ++ os:getpid() ++ " erl_child_setup")),
    count_lines("pgrep -x -P " ++ Setup ++ " tunctl_port").

%% @doc Resident set size of an OS process, in kB.
rss_kb(OsPid) ->
    {ok, Status} = file:read_file("/proc/" ++ to_list(OsPid) ++ "/status"),
    {match, [Kb]} = re:run(Status, "VmRSS:\\s+(\\d+) kB", [{capture, all_but_first, list}]),
    list_to_integer(Kb).

%% @doc OS pid of a device's tunctl_port.
port_os_pid(Dev) ->
    {links, Links} = process_info(Dev, links),
    [Port] = [L || L <- Links, is_port(L)],
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    OsPid.

%% @doc Number of lines a shell command prints.
count_lines(Cmd) ->
    length(string:lexemes(os:cmd(Cmd), "\n")).

to_list(X) when is_binary(X) -> binary_to_list(X);
to_list(X) when is_integer(X) -> integer_to_list(X);
to_list(X) -> X.

to_string(X) -> to_list(X).

%%--------------------------------------------------------------------
%%% Packets
%%--------------------------------------------------------------------

%% @doc A TUN device 198.18.N.1/24 with IPv6 disabled (no router
%% solicitations), and a UDP socket bound to 198.18.N.1.
udp_setup(Name, N, Options) ->
    {ok, Dev} = tuncer:create(Name, Options),
    ok = file:write_file(iolist_to_binary(["/proc/sys/net/ipv6/conf/", Name, "/disable_ipv6"]), <<"1">>),
    ok = tuncer:up(Dev, {198, 18, N, 1}, 24),
    {ok, Sock} = gen_udp:open(0, [binary, {ip, {198, 18, N, 1}}, {active, false}]),
    {Dev, Sock}.

%% @doc Passive reads until a packet Match accepts.
recv_until(Dev, Match) ->
    {ok, Packet} = tuncer:recv(Dev, 65535, 2000),
    case Match(Packet) of
        true -> Packet;
        false -> recv_until(Dev, Match)
    end.

%% @doc The next {tuntap, Dev, Packet} message Match accepts, within Ms
%% between messages.
active_match(Dev, Match, Ms) ->
    receive
        {tuntap, Dev, Packet} ->
            case Match(Packet) of
                true -> Packet;
                false -> active_match(Dev, Match, Ms)
            end
    after Ms ->
        ct:fail({no_packet, Dev, process_info(self(), messages)})
    end.

is_udp_to(<<4:4, IHL:4, _:8/binary, 17, _:10/binary, Rest/binary>>, DPort) ->
    Skip = (IHL - 5) * 4,
    case Rest of
        <<_:Skip/binary, _:16, DPort:16, _/binary>> -> true;
        _ -> false
    end;
is_udp_to(_, _) ->
    false.

parse_udp(<<4:4, IHL:4, _:8/binary, 17, _:16, A, B, C, D, E, F, G, H, Rest/binary>>) ->
    Skip = (IHL - 5) * 4,
    <<_:Skip/binary, SPort:16, DPort:16, Len:16, _:16, Payload:(Len - 8)/binary, _/binary>> = Rest,
    {{A, B, C, D}, {E, F, G, H}, SPort, DPort, Payload}.

%% @doc Swap IPv4 addresses and UDP ports; the IPv4 header checksum does not
%% change, the UDP checksum is set to 0 (none).
reflect(<<4:4, IHL:4, Head:8/binary, 17, Csum:16, Src:4/binary, Dst:4/binary, Rest/binary>>) ->
    Skip = (IHL - 5) * 4,
    <<Opt:Skip/binary, SPort:16, DPort:16, Len:16, _:16, Payload/binary>> = Rest,
    <<4:4, IHL:4, Head/binary, 17, Csum:16, Dst/binary, Src/binary, Opt/binary, DPort:16, SPort:16, Len:16, 0:16,
        Payload/binary>>.

%% @doc An IPv4/UDP packet (no options, UDP checksum 0: none) with a valid
%% header checksum.
udp4({A, B, C, D}, {E, F, G, H}, SPort, DPort, Payload) ->
    Len = 28 + byte_size(Payload),
    Header = <<16#45, 0, Len:16, 0:16, 0:16, 64, 17, 0:16, A, B, C, D, E, F, G, H>>,
    Csum = bnot fold(lists:sum([W || <<W:16>> <= Header])) band 16#ffff,
    <<Pre:10/binary, 0:16, Post/binary>> = Header,
    <<Pre/binary, Csum:16, Post/binary, SPort:16, DPort:16, (Len - 20):16, 0:16, Payload/binary>>.

fold(Sum) when Sum > 16#ffff -> fold((Sum band 16#ffff) + (Sum bsr 16));
fold(Sum) -> Sum.
