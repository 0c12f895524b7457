// A thread-pool HTTP server as Java programs write it: the JDK's built-in HttpServer, whose
// workers write a response (headers, then the body), then park on the pool's queue.
// usage: java PoolServer HOST PORT    Serves every path with a 100-byte body.
import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.util.Arrays;
import java.util.concurrent.Executors;

public class PoolServer {
    public static void main(String[] args) throws Exception {
        byte[] body = new byte[100];
        Arrays.fill(body, (byte) 'x');
        HttpServer server = HttpServer.create(new InetSocketAddress(args[0], Integer.parseInt(args[1])), 64);
        server.createContext("/", exchange -> {
            exchange.sendResponseHeaders(200, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.start();
    }
}
