%% @private
%% @doc The wire: the only module that knows how frames to and from
%% `tunctl_port' look (doc/protocol.md, version 1).
%%
%% Starting the port and matching replies to requests is
%% `tunctl_session''s; this module only turns terms into frames and back.
%%
%% Frames are `{packet, 4}', one ETF term each. The two data-path frames
%% have a fixed ("canonical") encoding: `send/2' builds its header by hand
%% and passes the payload as iodata (no copy), and `decode/1' matches
%% `{tuntap, Ref, Packet}' with a binary pattern, giving a sub-binary of the
%% frame (no copy). Everything else goes through `term_to_binary/1' and
%% `binary_to_term/1'.
-module(tunctl_proto).

-export([
    call/2,
    send/2,
    send/3,
    sendv/2,
    send_frames/2,
    active/2,
    decode/1,
    handshake/1,
    commands/0,
    version/0
]).

-include("tunctl_proto.hrl").

%% sendv header and trailer, and the header of each packet in it.
-define(SENDV_OVERHEAD, 21).
-define(SENDV_PACKET, 5).

-define(VERSION, ?TUNCTL_PROTO_VERSION).

-type ref() :: 1..?TUNCTL_MAX_REF.
-type limit() :: boolean() | non_neg_integer().
-type frame() ::
    {tuntap, ref(), binary()}
    | {tuntap_batch, ref(), [binary(), ...]}
    | {reply, non_neg_integer(), term()}
    | {tuntap_error, ref(), atom()}
    | {tuntap_read_error, ref(), atom()}
    | {tunctl_error, term()}
    | {tunctl_port, term(), term()}.

-export_type([ref/0, limit/0, frame/0]).

%% @doc Protocol version this side speaks.
-spec version() -> pos_integer().
version() -> ?VERSION.

%% @doc The commands of `{call, Id, Cmd}' (doc/protocol.md, "Commands"):
%% the command name and the number of arguments after it, from the header
%% generated from the Go table.
-spec commands() -> [{atom(), non_neg_integer()}].
commands() ->
    ?TUNCTL_COMMANDS.

%%--------------------------------------------------------------------
%%% Handshake
%%--------------------------------------------------------------------

%% @doc Check the first frame of the port.
-spec handshake(frame() | {error, term()}) -> {ok, [atom()]} | {error, term()}.
handshake({tunctl_port, ?VERSION, Caps}) when is_list(Caps) ->
    {ok, Caps};
handshake({tunctl_port, Version, _}) ->
    {error, {version_mismatch, Version, ?VERSION}};
handshake({error, _} = Error) ->
    Error;
handshake(Frame) ->
    {error, {tunctl_port_handshake, Frame}}.

%%--------------------------------------------------------------------
%%% Encode (BEAM -> port)
%%--------------------------------------------------------------------

%% @doc `{call, Id, Cmd}'.
-spec call(non_neg_integer(), tuple()) -> binary().
call(Id, Cmd) when is_integer(Id), Id >= 0, is_tuple(Cmd) ->
    term_to_binary({call, Id, Cmd}).

%% @doc `{send, Ref, Packet}', canonical encoding; the payload is not copied.
-spec send(ref(), iodata()) -> iodata().
send(Ref, Packet) ->
    send(Ref, iolist_size(Packet), Packet).

%% @doc As `send/2', with the packet's size already known.
-spec send(ref(), non_neg_integer(), iodata()) -> iodata().
send(Ref, Len, Packet) ->
    [<<131, 104, 3, 119, 4, "send", 98, Ref:32, 109, Len:32>>, Packet].

%% @doc `{sendv, Ref, Packets}', canonical encoding: several packets, each
%% with its size, in one frame (the port writes each with its own write(2));
%% payloads are not copied.
-spec sendv(ref(), [{non_neg_integer(), iodata()}]) -> iodata().
sendv(Ref, Packets) ->
    [<<131, 104, 3, 119, 5, "sendv", 98, Ref:32, 108, (length(Packets)):32>>,
     [[<<109, Len:32>>, P] || {Len, P} <- Packets],
     <<106>>].

%% @doc The frames that write `Packets' (each with its size), in order:
%% one `send' for one packet, else as few `sendv' as the port's frame limit
%% (256 KiB) allows; a packet is never split.
-spec send_frames(ref(), [{non_neg_integer(), iodata()}]) -> [iodata()].
send_frames(Ref, [{Size, Data}]) ->
    [send(Ref, Size, Data)];
send_frames(Ref, Packets) ->
    chunks(Ref, Packets, [], ?SENDV_OVERHEAD).

chunks(_Ref, [], [], _) ->
    [];
chunks(Ref, [], Acc, _) ->
    [sendv(Ref, lists:reverse(Acc))];
chunks(Ref, [{Size, _} = P | Rest], Acc, Bytes) when Acc =:= []; Bytes + ?SENDV_PACKET + Size =< ?TUNCTL_MAX_FRAME ->
    chunks(Ref, Rest, [P | Acc], Bytes + ?SENDV_PACKET + Size);
chunks(Ref, Packets, Acc, _) ->
    [sendv(Ref, lists:reverse(Acc)) | chunks(Ref, Packets, [], ?SENDV_OVERHEAD)].

%% @doc `{active, Ref, Limit}'.
-spec active(ref(), limit()) -> binary().
active(Ref, Limit) when is_boolean(Limit); is_integer(Limit), Limit >= 0 ->
    term_to_binary({active, Ref, Limit}).

%%--------------------------------------------------------------------
%%% Decode (port -> BEAM)
%%--------------------------------------------------------------------

%% @doc Decode a frame. Packets come back as sub-binaries of `Frame' (in
%% a batch, oldest first).
-spec decode(binary()) -> frame() | {error, badetf}.
decode(<<131, 104, 3, 119, 6, "tuntap", 98, Ref:32/signed, 109, Len:32, Packet:Len/binary>>) ->
    {tuntap, Ref, Packet};
decode(<<131, 104, 3, 119, 12, "tuntap_batch", 98, Ref:32/signed, 108, N:32, Elems/binary>> = Frame) ->
    case packets(Elems, []) of
        Packets when length(Packets) =:= N, N > 0 -> {tuntap_batch, Ref, Packets};
        _ -> generic(Frame)
    end;
decode(Frame) ->
    generic(Frame).

packets(<<109, Len:32, P:Len/binary, Rest/binary>>, Acc) -> packets(Rest, [P | Acc]);
packets(<<106>>, Acc) -> lists:reverse(Acc);
packets(_, _) -> error.

generic(Frame) ->
    % Not `[safe]': `safe' refuses atoms this VM has not seen yet, and the
    % port sends atoms such as capabilities (`netlink') and errno names
    % (`enotty') that may be new. The port is our own program and its atoms
    % are a closed set, so the atom table cannot grow without bound.
    try binary_to_term(Frame) of
        Term -> Term
    catch
        error:badarg -> {error, badetf}
    end.
