%% Run by scripts/unpriv-test.sh as an unprivileged uid, with only a
%% setcap'd copy of tunctl_port (private mount+net namespace). Not a CT
%% suite: CT would need a writable build tree. Prints "N passed, M failed".
%% Packet helpers come from tunctl_test_lib, as in the suites.
-module(unpriv_check).

-export([main/0]).

main() ->
    Dir = os:getenv("UNPRIV_DIR"),
    Checks = [
        {"BEAM runs as an unprivileged uid with no capabilities", fun() ->
            "65534" = string:trim(os:cmd("id -u")),
            "0000000000000000" = cap_eff(os:getpid()),
            ok
        end},
        {"create, address, receive and send packets", fun() -> data_path() end},
        {"getfd/1: a relayed socket, frames both ways, no TUN descriptor in the VM", fun() -> getfd_path() end},
        {"the port holds CAP_NET_ADMIN only", fun() ->
            {ok, Dev} = tuncer:create(<<"up-cap">>, [tun, no_pi]),
            "0000000000001000" = cap_eff(tunctl_test_lib:port_os_pid(Dev)),
            ok = tuncer:destroy(Dev)
        end},
        {"attaching to lo is refused", fun() ->
            {error, eperm} = tuncer:create(<<"lo">>, [tun, no_pi]),
            ok
        end},
        {"a device it creates belongs to it (TUNSETOWNER to its uid)", fun() ->
            {ok, Dev} = tuncer:create(<<"up-mine">>, [tun, no_pi, multi_queue]),
            {match, _} = re:run(os:cmd("ip -d link show up-mine"), " user (65534|nobody) "),
            % and so it may attach a second queue to it
            {ok, Dev2} = tuncer:create(<<"up-mine">>, [tun, no_pi, multi_queue]),
            {match, _} = re:run(os:cmd("ip -d link show up-mine"), "numqueues 2 "),
            ok = tuncer:destroy(Dev2),
            ok = tuncer:destroy(Dev)
        end},
        {"a root-made ownerless device cannot be taken over", fun() ->
            {error, eperm} = tuncer:create(<<"up-rootless">>, [tun]),
            {error, eperm} = tuncer:create(<<"up-rootless">>, [tun, no_pi]),
            nomatch = re:run(os:cmd("ip -d link show up-rootless"), " user "),
            ok
        end},
        {"another user's multi-queue device cannot be joined", fun() ->
            {error, eperm} = tuncer:create(<<"up-other">>, [tun, multi_queue]),
            {match, _} = re:run(os:cmd("ip -d link show up-other"), "numqueues 0 "),
            ok
        end},
        {"{namespace, _} is refused (no administrator's allow_netns), no device left", fun() ->
            {error, eacces} = tuncer:create(<<"up-ns">>, [tun, no_pi, {namespace, "/proc/self/ns/net"}]),
            false = tunctl_test_lib:exists("up-ns"),
            ok
        end},
        {"with a policy file: a name outside the prefix is refused", fun() ->
            ok = application:set_env(tunctl, policy, filename:join(Dir, "policy")),
            {error, eacces} = tuncer:create(<<"evil0">>, [tun, no_pi]),
            ok
        end},
        {"with a policy file: an address outside the ranges is refused", fun() ->
            {ok, Dev} = tuncer:create(<<"up-addr">>, [tun, no_pi]),
            {error, eacces} = tuncer:up(Dev, {192, 0, 2, 1}, 24),
            ok = tuncer:destroy(Dev)
        end},
        {"with a policy file: a network wider than the ranges is refused", fun() ->
            {ok, Dev} = tuncer:create(<<"up-wide">>, [tun, no_pi]),
            {error, eacces} = tuncer:up(Dev, {198, 18, 0, 1}, 1),
            {error, eacces} = tuncer:up(Dev, {16#2001, 16#db8, 1, 0, 0, 0, 0, 1}, 0),
            "" = os:cmd("ip -o addr show dev up-wide scope global"),
            ok = tuncer:up(Dev, {198, 18, 41, 1}, 24),
            ok = tuncer:destroy(Dev)
        end},
        {"with a policy file: persist is refused", fun() ->
            {ok, Dev} = tuncer:create(<<"up-pers">>, [tun, no_pi]),
            {error, eacces} = tuncer:persist(Dev, true),
            ok = tuncer:destroy(Dev)
        end},
        {"with a policy file: TUNSETPERSIST through tunctl:ioctl/3 is refused", fun() ->
            {ok, FD, Name} = tunctl:create(<<"up-ioctl">>, [tun, no_pi]),
            % TUNSETPERSIST, as include/tuntap.hrl defines it
            {error, eacces} = tunctl:ioctl(FD, 16#400454cb, 1),
            nomatch = re:run(os:cmd("ip -d link show " ++ binary_to_list(Name)), "persist on"),
            ok = tunctl:close(FD)
        end},
        {"with a policy file: {namespace, _} is refused", fun() ->
            {error, eacces} = tuncer:create(<<"up-ns">>, [tun, no_pi, {namespace, "/proc/self/ns/net"}]),
            false = tunctl_test_lib:exists("up-ns"),
            ok = application:unset_env(tunctl, policy)
        end},
        {"a copy without the file capability cannot create devices", fun() ->
            ok = application:set_env(tunctl, port_program, filename:join(Dir, "tunctl_port.nocap")),
            try
                {error, eperm} = tuncer:create(<<"up-nocap">>, [tun, no_pi]),
                ok
            after
                ok = application:set_env(tunctl, port_program, filename:join(Dir, "tunctl_port"))
            end
        end}
    ],
    Results = [run(Name, F) || {Name, F} <- Checks],
    Passed = length([ok || ok <- Results]),
    io:format("unprivileged: ~b passed, ~b failed~n", [Passed, length(Results) - Passed]),
    halt(case Passed =:= length(Results) of true -> 0; false -> 1 end).

run(Name, F) ->
    try F() of
        ok -> io:format("  ok    ~s~n", [Name]), ok
    catch
        C:R:St -> io:format("  FAIL  ~s: ~p:~0P at ~0P~n", [Name, C, R, 8, hd(St), 6]), failed
    end.

% LINC-Switch's pattern: open_port on getfd/1's descriptor.
getfd_path() ->
    {ok, Dev} = tuncer:create(<<"up-fd0">>, [tun, no_pi]),
    ok = tuncer:up(Dev, {198, 18, 42, 1}, 24),
    Fd = tuncer:getfd(Dev),
    {ok, "socket:" ++ _} = file:read_link("/proc/self/fd/" ++ integer_to_list(Fd)),
    {ok, Fds} = file:list_dir("/proc/self/fd"),
    [] = [F || F <- Fds, file:read_link("/proc/self/fd/" ++ F) =:= {ok, "/dev/net/tun"}],
    Port = open_port({fd, Fd, Fd}, [binary]),
    {ok, S} = gen_udp:open(0, [binary, {ip, {198, 18, 42, 1}}, {active, false}]),
    ok = gen_udp:send(S, {198, 18, 42, 2}, 4042, <<"relayed">>),
    Pkt = port_udp(Port, 4042),
    true = port_command(Port, tunctl_test_lib:reflect(Pkt)),
    {ok, {{198, 18, 42, 2}, 4042, <<"relayed">>}} = gen_udp:recv(S, 0, 2000),
    ok = gen_udp:close(S),
    ok = tuncer:destroy(Dev),
    % the port on the descriptor reads end of file and closes; then the
    % VM holds no descriptor for the device
    ok = tunctl_test_lib:wait(fun() -> erlang:port_info(Port) =:= undefined end, 2000, {port_open, Port}),
    ok = tunctl_test_lib:wait(fun() -> tunctl_fds:held() =:= [] end, 2000, {held, tunctl_fds:held()}).

% The next UDP datagram to DPort arriving on the port (the kernel sends
% other packets too; they wait in the device until the relay is on).
port_udp(Port, DPort) ->
    receive
        {Port, {data, P}} ->
            case tunctl_test_lib:is_udp_to(P, DPort) of
                true -> P;
                false -> port_udp(Port, DPort)
            end
    after 5000 ->
        error(no_packet)
    end.

data_path() ->
    {ok, Dev} = tuncer:create(<<"up-data0">>, [tun, no_pi]),
    ok = tuncer:up(Dev, {198, 18, 40, 1}, 24),
    {ok, S} = gen_udp:open(0, [binary, {ip, {198, 18, 40, 1}}, {active, false}]),
    ok = gen_udp:send(S, {198, 18, 40, 2}, 4040, <<"unprivileged">>),
    Pkt = tunctl_test_lib:recv_until(Dev, fun(P) -> tunctl_test_lib:is_udp_to(P, 4040) end),
    ok = tuncer:send(Dev, tunctl_test_lib:reflect(Pkt)),
    {ok, {{198, 18, 40, 2}, 4040, <<"unprivileged">>}} = gen_udp:recv(S, 0, 2000),
    ok = gen_udp:close(S),
    ok = tuncer:destroy(Dev).

cap_eff(OsPid) ->
    {ok, Status} = file:read_file("/proc/" ++ tunctl_test_lib:to_string(OsPid) ++ "/status"),
    {match, [Eff]} = re:run(Status, "CapEff:\\s+([0-9a-f]+)", [{capture, all_but_first, list}]),
    Eff.
