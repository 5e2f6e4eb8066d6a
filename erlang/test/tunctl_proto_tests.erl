%% Pure tests of the wire module, the option parsing and the registry; no
%% privileges, no port program needed.
-module(tunctl_proto_tests).

-include_lib("eunit/include/eunit.hrl").

send_canonical_test() ->
    Frame = iolist_to_binary(tunctl_proto:send(7, [<<1, 2>>, [3], <<>>])),
    ?assertEqual(<<131, 104, 3, 119, 4, "send", 98, 7:32, 109, 3:32, 1, 2, 3>>, Frame),
    ?assertEqual({send, 7, <<1, 2, 3>>}, binary_to_term(Frame)).

send_no_copy_test() ->
    Packet = binary:copy(<<0>>, 1000),
    [_Header, Payload] = tunctl_proto:send(1, Packet),
    ?assert(Payload =:= Packet).

sendv_canonical_test() ->
    Frame = iolist_to_binary(tunctl_proto:sendv(7, [{2, [<<1>>, 2]}, {0, <<>>}, {3, <<"abc">>}])),
    ?assertEqual(<<131, 104, 3, 119, 5, "sendv", 98, 7:32, 108, 3:32,
                   109, 2:32, 1, 2, 109, 0:32, 109, 3:32, "abc", 106>>, Frame),
    ?assertEqual({sendv, 7, [<<1, 2>>, <<>>, <<"abc">>]}, binary_to_term(Frame)).

active_test() ->
    ?assertEqual({active, 3, true}, binary_to_term(tunctl_proto:active(3, true))),
    ?assertEqual({active, 3, false}, binary_to_term(tunctl_proto:active(3, false))),
    ?assertEqual({active, 3, 300}, binary_to_term(tunctl_proto:active(3, 300))),
    ?assertError(function_clause, tunctl_proto:active(3, -1)).

call_test() ->
    ?assertEqual({call, 5, {close, 9}}, binary_to_term(tunctl_proto:call(5, {close, 9}))).

decode_fast_path_test() ->
    Payload = binary:copy(<<"abcd">>, 100),
    Frame = <<131, 104, 3, 119, 6, "tuntap", 98, 42:32, 109, 400:32, Payload/binary>>,
    ?assertEqual({tuntap, 42, Payload}, tunctl_proto:decode(Frame)),
    {tuntap, 42, Packet} = tunctl_proto:decode(Frame),
    % a sub-binary of the frame (refc binaries only: frames over 64 bytes)
    ?assertEqual(byte_size(Frame), binary:referenced_byte_size(Packet)).

decode_generic_test() ->
    % SMALL_INTEGER_EXT ref, ATOM_EXT atom: still {tuntap, Ref, Packet}
    Frame = term_to_binary({tuntap, 1, <<"xy">>}),
    ?assertEqual({tuntap, 1, <<"xy">>}, tunctl_proto:decode(Frame)),
    ?assertEqual({reply, 1, ok}, tunctl_proto:decode(term_to_binary({reply, 1, ok}))),
    % atoms the VM has never seen are accepted (errno names, capabilities)
    Unknown = <<131, 104, 3, 119, 11, "tuntap_erro", 97, 1, 119, 12, "ezzz_unknown">>,
    ?assertMatch({tuntap_erro, 1, _}, tunctl_proto:decode(Unknown)).

decode_bad_test() ->
    ?assertEqual({error, badetf}, tunctl_proto:decode(<<>>)),
    ?assertEqual({error, badetf}, tunctl_proto:decode(<<131, 104, 3>>)),
    ?assertEqual({error, badetf}, tunctl_proto:decode(<<"garbage">>)),
    % a truncated packet frame falls through to the generic decoder
    ?assertEqual(
        {error, badetf},
        tunctl_proto:decode(<<131, 104, 3, 119, 6, "tuntap", 98, 1:32, 109, 10:32, "abc">>)
    ).

handshake_test() ->
    ?assertEqual({ok, [tun, tap]}, tunctl_proto:handshake({tunctl_port, 1, [tun, tap]})),
    ?assertEqual({error, {version_mismatch, 2, 1}}, tunctl_proto:handshake({tunctl_port, 2, []})),
    ?assertMatch({error, {tunctl_port_handshake, _}}, tunctl_proto:handshake({reply, 0, ok})),
    ?assertEqual({error, badetf}, tunctl_proto:handshake({error, badetf})).

open_missing_test() ->
    ?assertEqual({error, enoent}, tunctl_session:open("/nonexistent/tunctl_port", [])).

open_version_mismatch_test() ->
    % a fake port program announcing version 2
    Dir = fake_dir(),
    Fake = fake_port(Dir, "fake_port", printf([{tunctl_port, 2, []}]) ++ "sleep 1\n"),
    ?assertEqual({error, {version_mismatch, 2, 1}}, tunctl_session:open(Fake, [])),
    Exits = fake_port(Dir, "exits", "exit 1\n"),
    ?assertEqual({error, {tunctl_port_exit, 1}}, tunctl_session:open(Exits, [])),
    _ = file:del_dir_r(Dir).

% A port that keeps sending frames but never replies: call/3 gives up after
% its timeout in all, not per frame (the port here sends one every 50 ms
% for up to 30 s: a per-frame timeout would outlast eunit's 5 s).
call_timeout_is_a_deadline_test() ->
    Dir = fake_dir(),
    Noise = printf([{tunctl_error, noise}]),
    Fake = fake_port(Dir, "chatty", printf([{tunctl_port, 1, []}]) ++
        "i=0; while [ $i -lt 600 ]; do " ++ string:trim(Noise) ++ " || exit 0; sleep 0.05; i=$((i+1)); done\n"),
    {ok, S} = tunctl_session:open(Fake, []),
    ?assertMatch({{error, timeout}, _}, tunctl_session:call(S, {stats, 1}, 300)),
    ok = tunctl_session:close(S, undefined),
    _ = file:del_dir_r(Dir).

fake_dir() ->
    Dir = filename:join(["/tmp", "tunctl_proto_tests." ++ os:getpid()]),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Dir.

% An executable shell script Name in Dir.
fake_port(Dir, Name, Body) ->
    Path = filename:join(Dir, Name),
    ok = file:write_file(Path, ["#!/bin/sh\n", Body]),
    ok = file:change_mode(Path, 8#755),
    Path.

% A printf(1) line writing these terms as {packet, 4} frames.
printf(Terms) ->
    Bytes = iolist_to_binary([<<(byte_size(B)):32, B/binary>> || T <- Terms, B <- [term_to_binary(T)]]),
    lists:flatten(io_lib:format("printf '~s'\n", [[io_lib:format("\\~3.8.0b", [X]) || <<X>> <= Bytes]])).

% The commands of the generated header (rendered from the Go table, which
% portproto's TestGeneratedFilesCurrent keeps current) are the ones the
% port binary serves, with the same arities: asked with an unknown Ref, a
% device command answers ebadf, with one argument more badarg; `open' and
% `netns' (no Ref) are known (not badcmd); an unknown command is badcmd.
% Needs the binary (make builds it before eunit), not privileges.
commands_served_by_port_test() ->
    {ok, S0} = tunctl_session:open([]),
    Call = fun(Cmd, S) -> tunctl_session:call(S, Cmd, 5000) end,
    Unknown = 16#7ffffff0,
    S = lists:foldl(
        fun({Name, Arity}, S1) ->
            {Exact, S2} = Call(list_to_tuple([Name | lists:duplicate(Arity, Unknown)]), S1),
            {More, S3} = Call(list_to_tuple([Name | lists:duplicate(Arity + 1, Unknown)]), S2),
            case lists:member(Name, [open, netns]) of
                true -> ?assertNotEqual({Name, {error, badcmd}}, {Name, Exact});
                false -> ?assertEqual({Name, {error, ebadf}}, {Name, Exact})
            end,
            ?assertEqual({Name, {error, badarg}}, {Name, More}),
            S3
        end,
        S0,
        tunctl_proto:commands()
    ),
    ?assertMatch({{error, badcmd}, _}, Call({no_such_command, 1}, S)),
    ok = tunctl_session:close(S, undefined).

options_test_() ->
    [
        % pure: no device is made (eunit runs outside any namespace)
        ?_assertMatch({ok, {<<"x">>, [no_pi, tap], false, packet, undefined, [], _}}, tunctl_opts:create_args(<<"x">>, [bogus])),
        ?_assertMatch({ok, {<<"x">>, [tun], false, packet, undefined, [], _}}, tunctl_opts:create_args("x", [tun, {extra, 1}])),
        ?_assertError(badarg, tunctl_opts:create_args(<<"x">>, [{active, 32768}])),
        ?_assertError(badarg, tunctl_opts:create_args(<<"x">>, [{active, maybe}])),
        ?_assertError(badarg, tunctl_opts:create_args(<<"x">>, [{port_options, [{packet, 2}]}])),
        ?_assertMatch(
            {ok, {_, _, _, _, _, _, [{parallelism, true}]}},
            tunctl_opts:create_args(<<"x">>, [{port_options, [{parallelism, true}]}])
        ),
        ?_assertMatch(
            {ok, {_, _, _, _, _, _, [{busy_limits_port, disabled}, {busy_limits_msgq, disabled}]}},
            tunctl_opts:create_args(<<"x">>, [])
        ),
        ?_assertEqual({error, badargs}, tuncer:create(<<"x">>, bogus)),
        ?_assertEqual({error, badargs}, tuncer:create(x, [])),
        ?_assertEqual({error, badargs}, tuncer:create(<<"0123456789abcdef">>, [tun])),
        ?_assertEqual({error, badargs}, tuncer:create("0123456789abcdef"))
    ].

registry_test_() ->
    {setup,
        fun() ->
            {ok, Pid} = tunctl_registry:start_link(),
            unlink(Pid),
            Pid
        end,
        fun(Pid) -> exit(Pid, kill) end, [
            fun registry_alloc/0,
            fun registry_wrap/0
        ]}.

registry_alloc() ->
    Self = self(),
    {ok, H} = tunctl_registry:alloc(Self),
    ?assert(H > 0),
    ?assertEqual({ok, Self}, tunctl_registry:lookup(H)),
    ?assertEqual({error, ebadf}, tunctl_registry:lookup(0)),
    ?assertEqual({error, ebadf}, tunctl_registry:lookup(foo)),
    % freed when the process exits
    {Pid, Ref} = spawn_monitor(fun() -> receive stop -> ok end end),
    {ok, H2} = tunctl_registry:alloc(Pid),
    ?assertEqual({ok, Pid}, tunctl_registry:lookup(H2)),
    Pid ! stop,
    receive {'DOWN', Ref, _, _, _} -> ok end,
    _ = sys:get_state(tunctl_registry),
    ?assertEqual({error, ebadf}, tunctl_registry:lookup(H2)),
    ok = tunctl_registry:free(H),
    ?assertEqual({error, ebadf}, tunctl_registry:lookup(H)).

registry_wrap() ->
    Self = self(),
    % the next handles: 2^31 - 1, then 1 (in use: skipped), then 2
    true = ets:insert(tunctl_registry, {'$counter', 16#7ffffffe}),
    true = ets:insert(tunctl_registry, {1, Self}),
    {ok, Max} = tunctl_registry:alloc(Self),
    ?assertEqual(16#7fffffff, Max),
    {ok, Next} = tunctl_registry:alloc(Self),
    ?assertEqual(2, Next),
    [ok = tunctl_registry:free(H) || H <- [1, 2, Max]].

batch_frame(Ref, Packets) ->
    <<131, 104, 3, 119, 12, "tuntap_batch", 98, Ref:32, 108, (length(Packets)):32,
      (<< <<109, (byte_size(P)):32, P/binary>> || P <- Packets >>)/binary, 106>>.

decode_batch_test() ->
    Big = binary:copy(<<"z">>, 300),
    Frame = batch_frame(9, [<<"a">>, <<>>, Big]),
    ?assertEqual({tuntap_batch, 9, [<<"a">>, <<>>, Big]}, tunctl_proto:decode(Frame)),
    % the same term as the generic decoder gives
    ?assertEqual(binary_to_term(Frame), tunctl_proto:decode(Frame)),
    {tuntap_batch, 9, [_, _, P]} = tunctl_proto:decode(Frame),
    % sub-binaries of the frame, no copy
    ?assertEqual(byte_size(Frame), binary:referenced_byte_size(P)).

decode_bad_batch_test() ->
    Frame = batch_frame(9, [<<"a">>, <<"bc">>]),
    % a count that lies, a truncated frame, trailing bytes: not the fast
    % path; the generic decoder refuses or returns the term as it is
    Lying = binary:replace(Frame, <<108, 2:32>>, <<108, 3:32>>),
    ?assertEqual({error, badetf}, tunctl_proto:decode(Lying)),
    ?assertEqual({error, badetf}, tunctl_proto:decode(binary:part(Frame, 0, byte_size(Frame) - 1))),
    % (binary_to_term/1 ignores bytes after a complete term)
    ?assertEqual({tuntap_batch, 9, [<<"a">>, <<"bc">>]}, tunctl_proto:decode(<<Frame/binary, 0>>)),
    % an empty batch is not a batch the port sends; decoded generically
    ?assertEqual({tuntap_batch, 9, []}, tunctl_proto:decode(term_to_binary({tuntap_batch, 9, []}))).

send_frames_test() ->
    % one packet: a send frame; several: one sendv frame
    [One] = tunctl_proto:send_frames(3, [{2, <<"ab">>}]),
    ?assertEqual({send, 3, <<"ab">>}, binary_to_term(iolist_to_binary(One))),
    [Two] = tunctl_proto:send_frames(3, [{2, <<"ab">>}, {1, [<<"c">>]}]),
    ?assertEqual({sendv, 3, [<<"ab">>, <<"c">>]}, binary_to_term(iolist_to_binary(Two))).

send_frames_split_test() ->
    % 10 packets of 60000 bytes: no frame over the port's limit, none
    % split, all in order
    Packets = [{60000, binary:copy(<<I>>, 60000)} || I <- lists:seq(1, 10)],
    Frames = [iolist_to_binary(F) || F <- tunctl_proto:send_frames(3, Packets)],
    ?assert(length(Frames) > 1),
    ?assert(lists:all(fun(F) -> byte_size(F) =< 262144 end, Frames)),
    Got = lists:append([Ps || F <- Frames, {sendv, 3, Ps} <- [binary_to_term(F)]]),
    ?assertEqual([P || {_, P} <- Packets], Got).

% tuncer:send/2's checks: what the kernel would refuse before the write.
frame_check_test_() ->
    Tap = 16#0002 bor 16#1000,
    Tun = 16#0001 bor 16#1000,
    TunPI = 16#0001,
    TunVnet = Tun bor 16#4000,
    [
        ?_assertEqual(einval, tunctl_opts:frame_check(Tap, 13, <<0:104>>)),
        ?_assertEqual(ok, tunctl_opts:frame_check(Tap, 14, <<0:112>>)),
        ?_assertEqual(einval, tunctl_opts:frame_check(Tun, 0, <<>>)),
        ?_assertEqual(einval, tunctl_opts:frame_check(Tun, 1, <<16#55>>)),
        ?_assertEqual(ok, tunctl_opts:frame_check(Tun, 1, <<16#45>>)),
        ?_assertEqual(ok, tunctl_opts:frame_check(Tun, 3, [[<<>>, [16#60]], <<0, 0>>])),
        ?_assertEqual(einval, tunctl_opts:frame_check(Tun, 3, [<<>>, [[16#15 | <<0>>], 0]])),
        ?_assertEqual(einval, tunctl_opts:frame_check(TunPI, 3, <<0, 0, 8>>)),
        ?_assertEqual(ok, tunctl_opts:frame_check(TunPI, 5, <<0, 0, 16#88, 16#b5, 16#55>>)),
        ?_assertEqual(einval, tunctl_opts:frame_check(TunVnet, 11, <<0:80, 16#55>>)),
        ?_assertEqual(ok, tunctl_opts:frame_check(TunVnet, 11, <<0:80, 16#45>>)),
        ?_assertEqual(einval, tunctl_opts:frame_check(Tap bor 16#4000, 20, <<0:160>>))
    ].
