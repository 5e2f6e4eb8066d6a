%% Faults and load: owners, ports and devices dying in every order, devices
%% deleted from outside, owners that stop reading, and many devices at once.
%% Everything measured is printed (ct:pal) as well as checked.
%% Runs only inside a private network namespace (make ct).
-module(tuncer_fault_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([owner_killed/1, port_killed/1, link_deleted_active/1, link_deleted_passive/1,
         concurrent_devices/1, create_destroy_cycles/1, flood_passive/1, slow_owner_active_n/1,
         slow_owner_batch/1]).

-import(tunctl_test_lib, [exists/1, wait_gone/2, wait_dead/2, wait_fds/2, fd_count/1, rss_kb/1, port_os_pid/1,
                          count_lines/1, ip/1]).

suite() -> [{timetrap, {minutes, 10}}].

all() ->
    [owner_killed, port_killed, link_deleted_active, link_deleted_passive,
     concurrent_devices, create_destroy_cycles, flood_passive, slow_owner_active_n, slow_owner_batch].

init_per_suite(Config) -> tunctl_test_lib:init_suite(Config).

end_per_suite(_Config) -> ok.

-define(CYCLES, list_to_integer(os:getenv("TUNCTL_CYCLES", "10000"))).

%% An owner killed with `kill' takes its device, its tuncer and its port
%% with it within a second.
owner_killed(_Config) ->
    Fds = fd_count("self"),
    Self = self(),
    Owner = spawn(fun() ->
        {ok, Dev} = tuncer:create(<<"ft-own0">>, [tun, no_pi, {active, true}]),
        Self ! {dev, Dev, port_os_pid(Dev)},
        receive after infinity -> ok end
    end),
    {Dev, OsPid} = receive {dev, D, P} -> {D, P} after 5000 -> ct:fail(no_device) end,
    ?assert(exists("ft-own0")),
    Ref = monitor(process, Dev),
    T0 = erlang:monotonic_time(millisecond),
    exit(Owner, kill),
    receive {'DOWN', Ref, process, Dev, _} -> ok after 1000 -> ct:fail(tuncer_alive) end,
    ok = wait_gone("ft-own0", 1000),
    ok = wait_dead(OsPid, 1000),
    ok = wait_fds(Fds, 1000),
    report("owner SIGKILL-equivalent: device, tuncer, port and the BEAM's fds gone in ~p ms",
           [erlang:monotonic_time(millisecond) - T0]).

%% SIGKILL of tunctl_port: the tuncer exits with {tunctl_port_exit, _}, the
%% (trapping) owner sees it, and the kernel removes the device.
port_killed(_Config) ->
    process_flag(trap_exit, true),
    Fds = fd_count("self"),
    {ok, Dev} = tuncer:create(<<"ft-port0">>, [tun, no_pi]),
    OsPid = port_os_pid(Dev),
    T0 = erlang:monotonic_time(millisecond),
    _ = os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    receive {'EXIT', Dev, Reason} -> ?assertMatch({tunctl_port_exit, _}, Reason)
    after 1000 -> ct:fail(no_exit)
    end,
    ok = wait_gone("ft-port0", 1000),
    ok = wait_fds(Fds, 1000),
    report("port SIGKILL: tuncer exited, device and the BEAM's fds gone in ~p ms",
           [erlang:monotonic_time(millisecond) - T0]),
    process_flag(trap_exit, false).

%% `ip link del' while the device is active: the owner gets
%% {tuntap_error, Dev, ebadfd}, later calls fail with a posix atom, and the
%% port keeps serving until destroy.
link_deleted_active(_Config) ->
    {ok, Dev} = tuncer:create(<<"ft-del0">>, [tun, no_pi, {active, true}]),
    ok = tuncer:up(Dev, {198, 18, 30, 1}, 24),
    "" = ip("link del ft-del0"),
    receive {tuntap_error, Dev, Posix} -> ?assertEqual(ebadfd, Posix)
    after 2000 -> ct:fail(no_tuntap_error)
    end,
    ?assertMatch({error, _}, tuncer:up(Dev, {198, 18, 30, 1}, 24)),
    ok = tuncer:send(Dev, <<16#45, 0:152>>),
    receive {tuntap_error, Dev, ebadfd} -> ok after 2000 -> ct:fail(no_send_error) end,
    ?assert(is_process_alive(Dev)),
    ok = tuncer:destroy(Dev).

link_deleted_passive(_Config) ->
    {ok, Dev} = tuncer:create(<<"ft-del1">>, [tun, no_pi]),
    "" = ip("link del ft-del1"),
    ?assertEqual({error, ebadfd}, tuncer:recv(Dev)),
    ?assertEqual({error, ebadfd}, tuncer:recv(Dev, 1500, 2000)),
    ok = tuncer:destroy(Dev).

%% 100 devices alive at once in one node, then gone: fds of the BEAM, port
%% processes and interfaces return to where they were.
concurrent_devices(_Config) ->
    Before = counts(),
    Self = self(),
    % created concurrently; each worker hands its device to us before it
    % exits (the owner's exit would take the device with it)
    Devs = pmap(fun(I) ->
        Name = iolist_to_binary(io_lib:format("ft-c~b", [I])),
        {ok, Dev} = tuncer:create(Name, [tun, no_pi, {active, true}]),
        ok = tuncer:controlling_process(Dev, Self),
        Dev
    end, lists:seq(1, 100)),
    During = counts(),
    ?assertEqual(element(2, Before) + 100, element(2, During)),
    ?assertEqual(element(3, Before) + 100, element(3, During)),
    pmap(fun(Dev) -> ok = tuncer:destroy(Dev) end, Devs),
    ok = settle(Before),
    report("100 concurrent devices: {beam_fds, ports, links} before ~w, during ~w, after ~w",
           [Before, During, counts()]).

%% Many create/destroy cycles (TUNCTL_CYCLES, default 10000) from 8
%% concurrent workers; nothing accumulates.
create_destroy_cycles(_Config) ->
    N = ?CYCLES,
    Before = counts(),
    T0 = erlang:monotonic_time(millisecond),
    Workers = 8,
    pmap(fun(W) ->
        [begin
             {ok, Dev} = tuncer:create(<<>>, [tun, no_pi]),
             ok = tuncer:destroy(Dev)
         end || _ <- lists:seq(1, N div Workers + min(1, max(0, N rem Workers - W + 1)))],
        ok
    end, lists:seq(1, Workers)),
    Ms = erlang:monotonic_time(millisecond) - T0,
    ok = settle(Before),
    report("~b create/destroy cycles in ~b ms (~.2f ms each, 8 workers); {beam_fds, ports, links} before ~w after ~w",
           [N, Ms, Ms / N, Before, counts()]).

%% A sender blasts datagrams at a passive device whose owner never reads:
%% the kernel queue absorbs and drops them; the port and the BEAM stay flat.
flood_passive(_Config) ->
    {ok, Dev} = tuncer:create(<<"ft-flood0">>, [tun, no_pi]),
    ok = tuncer:up(Dev, {198, 18, 31, 1}, 24),
    Port = port_os_pid(Dev),
    {Rss0, Mem0} = {rss_kb(Port), erlang:memory(total)},
    Sent = blast({198, 18, 31, 1}, {198, 18, 31, 2}, 100000, 10000),
    {Rss1, Mem1} = {rss_kb(Port), erlang:memory(total)},
    {message_queue_len, QLen} = process_info(Dev, message_queue_len),
    report("flood of ~b datagrams at a passive device: port RSS ~b -> ~b kB, BEAM memory ~b -> ~b kB, tuncer queue ~b",
           [Sent, Rss0, Rss1, Mem0 div 1024, Mem1 div 1024, QLen]),
    ?assert(Rss1 - Rss0 < 8 * 1024),
    ?assert(Mem1 - Mem0 < 32 * 1024 * 1024),
    ?assert(QLen < 10),
    % the device still works: what the kernel queued can be read
    ?assertMatch({ok, _}, tuncer:recv(Dev)),
    ok = tuncer:destroy(Dev).

%% {active, N} owner that stops re-arming while traffic flows: at most N
%% packets reach it, then it is passive and memory stays flat.
slow_owner_active_n(_Config) ->
    slow_owner(<<"ft-slow0">>, 32, []).

%% The same with {deliver, batch}: at most N packets in total, in batches.
slow_owner_batch(_Config) ->
    slow_owner(<<"ft-slow1">>, 33, [{deliver, batch}]).

slow_owner(Name, Net, Opts) ->
    {ok, Dev} = tuncer:create(Name, [tun, no_pi, {active, 50} | Opts]),
    ok = file:write_file(iolist_to_binary(["/proc/sys/net/ipv6/conf/", Name, "/disable_ipv6"]), <<"1">>),
    ok = tuncer:up(Dev, {198, 18, Net, 1}, 24),
    Port = port_os_pid(Dev),
    {Rss0, Mem0} = {rss_kb(Port), erlang:memory(total)},
    Sent = blast({198, 18, Net, 1}, {198, 18, Net, 2}, 100000, 10000),
    timer:sleep(200),
    {Rss1, Mem1} = {rss_kb(Port), erlang:memory(total)},
    {message_queue_len, Mine} = process_info(self(), message_queue_len),
    Packets = drain(0),
    report("slow {active, 50} owner ~p, ~b datagrams sent: ~b delivered, mailbox ~b, port RSS ~b -> ~b kB, BEAM ~b -> ~b kB",
           [Opts, Sent, Packets, Mine, Rss0, Rss1, Mem0 div 1024, Mem1 div 1024]),
    ?assertEqual(50, Packets),
    ?assert(Rss1 - Rss0 < 8 * 1024),
    ?assert(Mem1 - Mem0 < 32 * 1024 * 1024),
    ok = tuncer:destroy(Dev).

%%--------------------------------------------------------------------

%% Measurements go to the test log and to the console (make test's output).
report(Fmt, Args) ->
    ct:pal(Fmt, Args),
    io:format(user, "tuncer_fault_SUITE: " ++ Fmt ++ "~n", Args).

drain(N) ->
    receive
        {tuntap, _, _} -> drain(N + 1);
        {tuntap_batch, _, Ps} when length(Ps) =< 64 -> drain(N + length(Ps));
        {tuntap_passive, _} -> drain(N)
    after 0 -> N
    end.

%% Send up to Count datagrams, for at most Ms milliseconds.
blast(From, To, Count, Ms) ->
    {ok, S} = gen_udp:open(0, [binary, {ip, From}]),
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    Payload = binary:copy(<<"x">>, 64),
    Sent = blast(S, To, Payload, Count, Deadline, 0),
    ok = gen_udp:close(S),
    Sent.

blast(_S, _To, _P, Count, _Deadline, Count) ->
    Count;
blast(S, To, P, Count, Deadline, N) ->
    case N rem 1000 =:= 0 andalso erlang:monotonic_time(millisecond) > Deadline of
        true -> N;
        false ->
            _ = gen_udp:send(S, To, 9, P),
            blast(S, To, P, Count, Deadline, N + 1)
    end.

%% {BEAM fds, tunctl_port processes, interfaces}
counts() ->
    {fd_count("self"), tunctl_test_lib:my_ports(), count_lines("ip -o link")}.

%% Processes and devices go away asynchronously after destroy returns only
%% for zombies being reaped: allow a moment.
settle(Before) -> settle(Before, 100).

settle(Before, 0) -> ?assertEqual(Before, counts()), ok;
settle(Before, N) ->
    case counts() of
        Before -> ok;
        _ -> timer:sleep(20), settle(Before, N - 1)
    end.

pmap(F, L) ->
    Parent = self(),
    Pids = [spawn_link(fun() -> Parent ! {self(), F(X)} end) || X <- L],
    [receive {P, R} -> R end || P <- Pids].
