%% @private
%% @doc The addresses a device process assigned, newest first: what
%% `tuncer:addr_del/2', `tuncer:dstaddr/2' and `tuncer:broadcast/2' look up.
%% A copy of part of the kernel's state, updated from the commands that
%% succeeded; it does not see addresses changed from outside.
-module(tunctl_addrs).

-export([new/0, configured/2, newest/2, prefix/2]).

-opaque book() :: [{tunctl_opts:addr(), 0..128}].

-export_type([book/0]).

%% @doc No address.
-spec new() -> book().
new() ->
    [].

%% @doc Record the effect of a command that succeeded (any command: those
%% that are not `addr_add' or `addr_del' change nothing). An address with a
%% peer is `/32' or `/128' whatever the prefix asked for.
-spec configured(tuple(), book()) -> book().
configured({addr_add, Addr, Len0, Opts}, Book) ->
    Len =
        case lists:keymember(peer, 1, Opts) of
            true -> bit_size(Addr);
            false -> Len0
        end,
    [{Addr, Len} | lists:delete({Addr, Len}, Book)];
configured({addr_del, Addr, Len}, Book) ->
    lists:delete({Addr, Len}, Book);
configured(_, Book) ->
    Book.

%% @doc The newest address of a family (32 or 128 bits).
-spec newest(32 | 128, book()) -> {ok, {tunctl_opts:addr(), 0..128}} | {error, eaddrnotavail}.
newest(Bits, Book) ->
    case [A || {Addr, _} = A <- Book, bit_size(Addr) =:= Bits] of
        [Newest | _] -> {ok, Newest};
        [] -> {error, eaddrnotavail}
    end.

%% @doc The prefix length an address was assigned with.
-spec prefix(tunctl_opts:addr(), book()) -> {ok, 0..128} | {error, eaddrnotavail}.
prefix(Addr, Book) ->
    case lists:keyfind(Addr, 1, Book) of
        {Addr, Len} -> {ok, Len};
        false -> {error, eaddrnotavail}
    end.
