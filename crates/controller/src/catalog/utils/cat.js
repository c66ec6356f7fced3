// whisk.system/utils/cat (as OpenWhisk's catalog): joins `lines` with newlines into `payload`.
function main(msg) {
    var lines = msg.lines || [];
    var retn = {lines: lines, payload: lines.join("\n")};
    console.log('cat: returning ' + JSON.stringify(retn));
    return retn;
}
